"""Hierarchical grouping (C++) against hand-computed orders and the Python reference."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn_cli.proposals.grouping_reference import reference_grouping
from rcnn_cli.proposals.selective_search import felzenszwalb, hierarchical_grouping, texture_bins


def _flat(labels: np.ndarray, colours: dict[int, tuple[int, int, int]] | None = None) -> np.ndarray:
    image = np.zeros((*labels.shape, 3), np.uint8)
    for label, colour in (colours or {}).items():
        image[labels == label] = colour
    return image


def test_size_similarity_merges_smallest_neighbours_first() -> None:
    # One row, regions of 4, 3, 2, 1 pixels in a chain 0-1-2-3.
    labels = np.array([[0, 0, 0, 0, 1, 1, 1, 2, 2, 3]], np.int32)
    image = _flat(labels)
    boxes, merges = hierarchical_grouping(labels, image, texture_bins(image), ("S",))
    # s_size = 1 - (|a| + |b|) / 10: (2,3) 0.7 first -> region 4 (3 px);
    # then (1,4) 0.4 beats (0,1) 0.3 -> region 5; then (0,5).
    assert merges[0].tolist() == [[2, 3], [1, 4], [0, 5]]
    assert boxes[0].tolist() == [
        [0, 0, 3, 0],
        [4, 0, 6, 0],
        [7, 0, 8, 0],
        [9, 0, 9, 0],
        [7, 0, 9, 0],
        [4, 0, 9, 0],
        [0, 0, 9, 0],
    ]


def test_colour_similarity_merges_same_colour_neighbours_first() -> None:
    # Four vertical stripes, chain 0-1-2-3: two red, then two blue.
    labels = np.repeat(np.array([[0, 0, 1, 1, 2, 2, 3, 3]], np.int32), 4, axis=0)
    image = _flat(labels, {0: (200, 0, 0), 1: (201, 1, 0), 2: (0, 0, 200), 3: (0, 2, 199)})
    _, merges = hierarchical_grouping(labels, image, texture_bins(image), ("C",))
    # (0,1) and (2,3) both have colour similarity 1: the tie goes to the smaller pair.
    assert merges[0].tolist() == [[0, 1], [2, 3], [4, 5]]


def test_only_touching_regions_merge() -> None:
    # Region 2 is a small square inside 0; 1 is far right. 2's box overlaps nothing but
    # 0's; 1 and 2 never touch, so they must never merge directly despite equal sizes.
    labels = np.zeros((6, 9), np.int32)
    labels[:, 7:] = 1
    labels[2:4, 2:4] = 2
    image = _flat(labels, {1: (10, 10, 10), 2: (10, 10, 10)})
    _, merges = hierarchical_grouping(labels, image, texture_bins(image), ("S",))
    assert merges[0].tolist()[0] in ([0, 2], [0, 1])
    assert [1, 2] not in merges[0].tolist()


@pytest.mark.parametrize("terms", ["CTSF", "TSF", "F", "S", "C", "T"])
def test_matches_python_reference_on_a_segmented_image(terms: str) -> None:
    rng = np.random.default_rng(3)
    # Blocks of random colours with noise, so that segmentation gives a few dozen regions.
    blocks = rng.integers(0, 256, size=(6, 8, 3))
    image = np.kron(blocks, np.ones((8, 8, 1))).astype(np.float64)
    image = (image + rng.normal(0, 12, image.shape)).clip(0, 255).astype(np.uint8)
    labels = felzenszwalb(image, k=100, min_size=10)
    assert 10 <= labels.max() + 1 <= 200
    textures = texture_bins(image)
    boxes, merges = hierarchical_grouping(labels, image, textures, (terms,))
    ref_boxes, ref_merges = reference_grouping(labels, image, textures, terms)
    assert merges[0].tolist() == [list(m) for m in ref_merges]
    np.testing.assert_array_equal(boxes[0], ref_boxes)


def test_several_similarity_sets_in_one_call_equal_separate_calls() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    labels = felzenszwalb(image, k=300, min_size=20)
    textures = texture_bins(image)
    both, _ = hierarchical_grouping(labels, image, textures, ("CTSF", "S"))
    one, _ = hierarchical_grouping(labels, image, textures, ("S",))
    np.testing.assert_array_equal(both[1], one[0])


def test_last_region_covers_the_image() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(30, 20, 3), dtype=np.uint8)
    labels = felzenszwalb(image, k=50, min_size=5)
    boxes, merges = hierarchical_grouping(labels, image, texture_bins(image), ("CTSF",))
    n = labels.max() + 1
    assert boxes.shape == (1, 2 * n - 1, 4) and merges.shape == (1, n - 1, 2)
    assert boxes[0, -1].tolist() == [0, 0, 19, 29]


def test_labels_with_a_gap_are_refused() -> None:
    labels = np.array([[0, 0, 2, 2]], np.int32)
    image = _flat(labels)
    with pytest.raises(RuntimeError, match="no pixels"):
        hierarchical_grouping(labels, image, texture_bins(image), ("S",))
