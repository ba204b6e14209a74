"""A readable pure-Python version of Selective Search's hierarchical grouping.

It exists for the tests: the C++ kernel (ops/cpu/selective_search_grouping.cpp) must
merge the same pairs in the same order. It recomputes every neighbour pair's similarity
at every step (O(N^2) per merge), so it is for small label maps only.
"""

from __future__ import annotations

import numpy as np

COLOUR_BINS = 25
TEXTURE_BINS = 10


def region_features(
    labels: np.ndarray, image: np.ndarray, textures: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per initial region: sizes [N], inclusive boxes [N, 4], colour histograms [N, 25 C]
    and texture histograms [N, 10 T] (each L1-normalised to sum 1)."""
    n = int(labels.max()) + 1
    flat = labels.reshape(-1)
    sizes = np.bincount(flat, minlength=n).astype(np.float64)
    ys, xs = np.indices(labels.shape)
    boxes = np.zeros((n, 4), np.int64)
    for region in range(n):
        mask = labels == region
        boxes[region] = [xs[mask].min(), ys[mask].min(), xs[mask].max(), ys[mask].max()]
    channels = image.shape[2]
    colour = np.zeros((n, COLOUR_BINS * channels))
    for c in range(channels):
        bins = image[:, :, c].reshape(-1).astype(np.int64) * COLOUR_BINS // 256 + c * COLOUR_BINS
        np.add.at(colour, (flat, bins), 1.0)
    t = textures.shape[2]
    texture = np.zeros((n, TEXTURE_BINS * t))
    for j in range(t):
        np.add.at(texture, (flat, textures[:, :, j].reshape(-1).astype(np.int64)), 1.0)
    colour /= (sizes * channels)[:, None]
    texture /= (sizes * t)[:, None]
    return sizes, boxes, colour, texture


def adjacency(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (a, b), a < b, of regions whose pixels touch horizontally or vertically."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        differ = a != b
        for p, q in zip(a[differ].tolist(), b[differ].tolist(), strict=True):
            pairs.add((min(p, q), max(p, q)))
    return pairs


def reference_grouping(
    labels: np.ndarray, image: np.ndarray, textures: np.ndarray, terms: str = "CTSF"
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Greedy grouping: merge the most similar neighbours (ties: smallest (i, j)) until
    one region is left. Returns (inclusive boxes [2N - 1, 4] in creation order, merges)."""
    sizes, boxes, colour, texture = region_features(labels, image, textures)
    sizes, boxes, colour, texture = list(sizes), [list(b) for b in boxes], list(colour), list(texture)
    image_size = float(labels.size)

    def similarity(i: int, j: int) -> float:
        s = 0.0
        if "C" in terms:
            s += float(np.minimum(colour[i], colour[j]).sum())
        if "T" in terms:
            s += float(np.minimum(texture[i], texture[j]).sum())
        if "S" in terms:
            s += 1.0 - (sizes[i] + sizes[j]) / image_size
        if "F" in terms:
            bw = max(boxes[i][2], boxes[j][2]) - min(boxes[i][0], boxes[j][0]) + 1
            bh = max(boxes[i][3], boxes[j][3]) - min(boxes[i][1], boxes[j][1]) + 1
            s += 1.0 - (bw * bh - sizes[i] - sizes[j]) / image_size
        return s

    neighbours = adjacency(labels)
    merges = []
    while neighbours:
        i, j = min(neighbours, key=lambda p: (-similarity(*p), p))
        t = len(sizes)
        wi, wj = sizes[i] / (sizes[i] + sizes[j]), sizes[j] / (sizes[i] + sizes[j])
        sizes.append(sizes[i] + sizes[j])
        colour.append(wi * colour[i] + wj * colour[j])
        texture.append(wi * texture[i] + wj * texture[j])
        bi, bj = boxes[i], boxes[j]
        boxes.append([min(bi[0], bj[0]), min(bi[1], bj[1]), max(bi[2], bj[2]), max(bi[3], bj[3])])
        merges.append((i, j))
        # Every pair that named i or j now names t.
        renamed = set()
        for p, q in neighbours:
            p2 = t if p in (i, j) else p
            q2 = t if q in (i, j) else q
            if p2 != q2:
                renamed.add((min(p2, q2), max(p2, q2)))
        neighbours = renamed
    return np.array(boxes, dtype=np.int64), merges
