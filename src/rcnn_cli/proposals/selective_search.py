"""Selective Search (Uijlings, van de Sande, Gevers, Smeulders, IJCV 2013), ours.

For each strategy (colour space, segmentation threshold k, similarity set):
  1. initial regions by Felzenszwalb-Huttenlocher segmentation (sigma 0.8, min size k),
  2. hierarchical grouping of neighbouring regions by similarity (colour, texture, size,
     fill), giving a hierarchy of 2N - 1 regions whose boxes are the proposals.
Hierarchies of all strategies are combined with the paper's pseudo-random ranking
(section 3.5): the region at hierarchy position i (1 = the top, which covers the whole
image) gets priority i * RND with RND uniform in [0, 1]; all boxes are sorted by priority,
duplicates removed, and the first ``max_proposals`` kept. Near-duplicates go too (a box
whose IoU with a better-ranked one exceeds ``near_duplicate_iou``): different strategies
often end in almost the same box for the same object, and each copy would take a place
under the cap that another object could use.

The per-pixel and per-merge work is in C++ (ops/cpu/selective_search_*.cpp), one thread
per call; the texture bins and the segmentation's sorted edges are shared by all k in a
colour space, and each segmentation by all similarity sets of a (colour space, k).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rcnn_cli.ops._extension import ops
from rcnn_cli.ops.nms import nms
from rcnn_cli.proposals.base import Proposals, finalize_boxes
from rcnn_cli.proposals.colour_spaces import convert_colour
from rcnn_cli.proposals.strategies import MODES, NEAR_DUPLICATE_IOU, SIMILARITY_TERMS
from rcnn_cli.proposals.working_size import DEFAULT_WORKING_PIXELS, to_original, working_image

if TYPE_CHECKING:
    from rcnn_cli.data import ImageRecord


def similarity_flags(similarities: tuple[str, ...]) -> torch.Tensor:
    """("CTSF", "TSF") -> int64 [S, 4] of which terms (colour, texture, size, fill) each set uses."""
    rows = []
    for name in similarities:
        if not name or set(name) - set(SIMILARITY_TERMS):
            raise ValueError(f"similarity set {name!r}: use letters from {SIMILARITY_TERMS}")
        rows.append([int(t in name) for t in SIMILARITY_TERMS])
    return torch.tensor(rows, dtype=torch.int64)


def felzenszwalb(image: np.ndarray, k: float, min_size: int, sigma: float = 0.8) -> np.ndarray:
    """Felzenszwalb-Huttenlocher segmentation: uint8 [H, W, C] -> int32 labels [H, W] in 0..N-1."""
    labels = ops().felzenszwalb_segmentation(
        torch.from_numpy(np.ascontiguousarray(image)), k, min_size, sigma
    )
    return labels.numpy()


def felzenszwalb_multi(
    image: np.ndarray, ks: tuple[float, ...], min_sizes: tuple[int, ...], sigma: float = 0.8
) -> np.ndarray:
    """:func:`felzenszwalb` for several (k, min size) pairs at once: int32 labels [K, H, W].

    The smoothing and the sorted edges, most of a segmentation's time, do not depend on k and
    are computed once, so each extra k costs only its merging pass.
    """
    labels = ops().felzenszwalb_segmentations(
        torch.from_numpy(np.ascontiguousarray(image)),
        [float(k) for k in ks],
        [int(m) for m in min_sizes],
        sigma,
    )
    return labels.numpy()


def texture_bins(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [H, W, 8C]: each pixel's texture-histogram bin per (channel, orientation)."""
    return ops().selective_search_texture_bins(torch.from_numpy(np.ascontiguousarray(image))).numpy()


def hierarchical_grouping(
    labels: np.ndarray, image: np.ndarray, textures: np.ndarray, similarities: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Group the N regions of ``labels`` once per similarity set.

    Returns (boxes int32 [S, 2N - 1, 4] inclusive pixel x1 y1 x2 y2 in creation order:
    the N initial regions then one per merge; merges int32 [S, N - 1, 2] the pair merged
    at each step, region N + m being made by merge m).
    """
    boxes, merges = ops().hierarchical_grouping(
        torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int32)),
        torch.from_numpy(np.ascontiguousarray(image)),
        torch.from_numpy(np.ascontiguousarray(textures)),
        similarity_flags(similarities),
    )
    return boxes.numpy(), merges.numpy()


def rank_hierarchies(
    hierarchies: list[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's pseudo-random ranking of several hierarchies (section 3.5).

    ``hierarchies``: boxes [M_s, 4] per strategy in creation order (the last one is the
    top). Returns (boxes [sum M_s, 4] sorted by priority, priorities [sum M_s] ascending).
    """
    boxes, priorities = [], []
    for h in hierarchies:
        position = np.arange(len(h), 0, -1, dtype=np.float64)  # top of the hierarchy = 1
        priorities.append(position * rng.random(len(h)))
        boxes.append(h)
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.int32)
    all_priorities = np.concatenate(priorities) if priorities else np.zeros(0)
    order = np.argsort(all_priorities, kind="stable")
    return all_boxes[order], all_priorities[order]


def suppress_near_duplicates(boxes: np.ndarray, iou: float, max_proposals: int) -> np.ndarray:
    """Indices into ``boxes`` (float32 [N, 4], best first, no exact duplicates) of the boxes to
    keep, best first: each box whose IoU with a better-ranked kept box exceeds ``iou`` is dropped
    (greedy NMS in rank order) until ``max_proposals`` are kept (``<= 0``: no cap).

    Only the first ``3 * max_proposals`` boxes are compared (NMS is quadratic, and a ranked list
    rarely loses two thirds of its head to near-duplicates); if fewer than ``max_proposals``
    survive, the best-ranked dropped boxes are taken back *after* every kept box, so that there
    are never fewer boxes than without the suppression, and a shorter cap taken later (the first
    N boxes, e.g. ``rcnn train --max-proposals``) still gets distinct boxes first. (Put back at
    their places in the ranking, as before, they took a third of a small image's first 300 boxes
    again: on BCCD at 267 × 200 px, capped at OpenCV's count, MABO 0.630 instead of 0.648.)
    """
    n = len(boxes) if max_proposals <= 0 else min(len(boxes), 3 * max_proposals)
    if n == 0:
        return np.zeros(0, np.int64)
    head = torch.from_numpy(np.ascontiguousarray(boxes[:n], dtype=np.float32))
    # Scores falling with the rank: NMS keeps boxes in rank order (equal scores by index).
    scores = torch.arange(n, 0, -1, dtype=torch.float32)
    keep = np.sort(nms(head, scores, iou).numpy())
    if max_proposals <= 0:
        return keep
    if len(keep) < max_proposals:
        dropped = np.setdiff1d(np.arange(len(boxes)), keep, assume_unique=True)
        keep = np.concatenate([keep, dropped[: max_proposals - len(keep)]])
    return keep[:max_proposals]


def demoted_scores(scores: np.ndarray) -> np.ndarray:
    """``scores`` float32 [N] in the order of :func:`suppress_near_duplicates` (kept boxes, then the
    near-duplicates taken back, each run descending) made descending throughout: the taken-back run
    is shifted below the last kept score, its own order kept, so that a sort by score (a reader
    that ranks by it) gives the same order as the file."""
    drops = np.flatnonzero(np.diff(scores) > 0)  # where the taken-back run starts (at most once)
    if len(drops) == 0:
        return scores
    start = drops[0] + 1
    out = scores.astype(np.float64)
    out[start:] += out[start - 1] - out[start] - 1.0
    return out.astype(np.float32)


@dataclass(frozen=True)
class SelectiveSearch:
    """``rcnn propose --method selective-search``: ours, in the paper's modes (``fast`` with one
    more segmentation threshold than the paper's: :mod:`rcnn_cli.proposals.strategies`).

    ``seed`` fixes the pseudo-random ranking so that a rerun gives the same file. Images above
    ``working_pixels`` are segmented shrunk to that size (:mod:`rcnn_cli.proposals.working_size`);
    None segments every image at full size. ``ks`` replaces the mode's segmentation thresholds
    (e.g. ``(50, 100)``, the paper's Fast mode); ``near_duplicate_iou`` None keeps near-duplicate
    boxes (only exact duplicates are dropped).
    """

    mode: str = "fast"
    max_proposals: int = 2000
    min_size: float = 0.0
    sigma: float = 0.8
    seed: int = 0
    working_pixels: int | None = DEFAULT_WORKING_PIXELS
    ks: tuple[float, ...] | None = None
    near_duplicate_iou: float | None = NEAR_DUPLICATE_IOU
    name: str = field(default="selective-search", init=False)
    needs_image: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: choose from {', '.join(MODES)}")
        if self.ks is not None and (not self.ks or min(self.ks) <= 0):
            raise ValueError(f"ks {self.ks!r}: give one or more thresholds > 0")
        if self.near_duplicate_iou is not None and not 0 < self.near_duplicate_iou <= 1:
            raise ValueError(f"near_duplicate_iou {self.near_duplicate_iou!r}: must be in (0, 1]")

    def segmentation_ks(self) -> tuple[float, ...]:
        """The segmentation thresholds k in use: ``ks`` or the mode's."""
        return tuple(self.ks) if self.ks is not None else tuple(MODES[self.mode]["ks"])

    def params(self) -> dict[str, Any]:
        strategy = MODES[self.mode]
        return {
            "mode": self.mode,
            "colour_spaces": list(strategy["colour_spaces"]),
            "ks": list(self.segmentation_ks()),
            "similarities": list(strategy["similarities"]),
            "sigma": self.sigma,
            "max_proposals": self.max_proposals,
            "min_size": self.min_size,
            "seed": self.seed,
            "working_pixels": self.working_pixels,
            "near_duplicate_iou": self.near_duplicate_iou,
            # Where near-duplicates taken back under the cap go (suppress_near_duplicates): a folder
            # made when they went back to their ranks has other boxes first, so it is not reused.
            "near_duplicates_taken_back": "after the kept boxes",
        }

    def hierarchies(self, image: np.ndarray) -> list[np.ndarray]:
        """Every strategy's hierarchy: a list of int32 [2N - 1, 4] inclusive pixel boxes."""
        strategy = MODES[self.mode]
        ks = self.segmentation_ks()
        out: list[np.ndarray] = []
        for space in strategy["colour_spaces"]:
            converted = convert_colour(image, space)
            textures = texture_bins(converted)
            # min size = k, as in the paper's code.
            for labels in felzenszwalb_multi(converted, ks, tuple(int(k) for k in ks), sigma=self.sigma):
                boxes, _ = hierarchical_grouping(labels, converted, textures, strategy["similarities"])
                out.extend(boxes)
        return out

    def propose(self, image: np.ndarray | None, record: ImageRecord | None = None) -> Proposals:
        if image is None:
            raise ValueError("selective search needs the image")
        height, width = image.shape[:2]
        small, sx, sy = working_image(image, self.working_pixels)
        rng = np.random.default_rng(self.seed)
        boxes, priorities = rank_hierarchies(self.hierarchies(small), rng)
        # Inclusive pixel indices -> continuous coordinates: the box covers x1 .. x2 + 1.
        boxes = boxes.astype(np.float32)
        boxes[:, 2:] += 1.0
        boxes = to_original(boxes, sx, sy)
        if self.near_duplicate_iou is None:
            return finalize_boxes(boxes, -priorities, width, height, self.min_size, self.max_proposals)
        unique = finalize_boxes(boxes, -priorities, width, height, self.min_size, 0)
        keep = suppress_near_duplicates(unique.boxes, self.near_duplicate_iou, self.max_proposals)
        return Proposals(unique.boxes[keep], demoted_scores(unique.scores[keep]))
