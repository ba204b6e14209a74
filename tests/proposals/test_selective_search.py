"""Selective Search end to end: modes, ranking, bounds, duplicates, objects found."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn_cli.proposals.selective_search import SelectiveSearch, rank_hierarchies
from rcnn_cli.proposals.strategies import strategies


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 96x128 noisy background with three flat rectangles; returns (image, boxes xyxy)."""
    rng = np.random.default_rng(seed)
    image = (rng.normal(120, 6, size=(96, 128, 3))).clip(0, 255).astype(np.uint8)
    objects = np.array([[10, 12, 40, 50], [60, 8, 110, 30], [70, 50, 100, 90]], np.float32)
    for (x1, y1, x2, y2), colour in zip(
        objects.astype(int), [(230, 30, 30), (30, 200, 40), (20, 40, 220)], strict=True
    ):
        image[y1:y2, x1:x2] = colour
    return image, objects


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None] - inter)


@pytest.mark.parametrize("mode", ["single", "fast", "quality"])
def test_modes_give_in_bounds_unique_ranked_boxes(mode: str) -> None:
    image, objects = _scene()
    p = SelectiveSearch(mode=mode).propose(image)
    assert p.boxes.dtype == np.float32 and p.scores.dtype == np.float32
    assert len(p) > 10
    b = p.boxes
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= 128).all() and (b[:, 3] <= 96).all()
    assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    assert len(np.unique(b, axis=0)) == len(b)
    assert (np.diff(p.scores) <= 0).all()
    # Flat rectangles on a plain background are found exactly.
    assert (_iou(objects, b).max(axis=1) == 1.0).all()


def test_strategy_counts_follow_the_paper() -> None:
    assert len(strategies("single")) == 1
    assert len(strategies("fast")) == 8
    assert len(strategies("quality")) == 80


def test_max_proposals_min_size_and_seed() -> None:
    image, _ = _scene(1)
    full = SelectiveSearch(mode="fast", max_proposals=0).propose(image)
    capped = SelectiveSearch(mode="fast", max_proposals=25).propose(image)
    assert len(capped) == 25 and len(full) > 25
    np.testing.assert_array_equal(capped.boxes, full.boxes[:25])
    big = SelectiveSearch(mode="fast", max_proposals=0, min_size=20).propose(image)
    assert (big.boxes[:, 2:] - big.boxes[:, :2] >= 20).all()
    assert 0 < len(big) < len(full)
    again = SelectiveSearch(mode="fast", max_proposals=0).propose(image)
    np.testing.assert_array_equal(again.boxes, full.boxes)
    other_seed = SelectiveSearch(mode="fast", max_proposals=0, seed=5).propose(image)
    assert not np.array_equal(other_seed.boxes, full.boxes)


def test_ranking_by_hierarchy_position_times_random() -> None:
    class FixedRandom:
        def random(self, n: int) -> np.ndarray:
            return np.full(n, 0.5)

    first = np.array([[0, 0, 1, 1], [1, 1, 2, 2], [0, 0, 2, 2]], np.int32)  # last one is the top
    second = np.array([[5, 5, 6, 6], [0, 0, 9, 9]], np.int32)
    boxes, priorities = rank_hierarchies([first, second], FixedRandom())  # type: ignore[arg-type]
    # Positions: first -> 3, 2, 1; second -> 2, 1; priority = position * 0.5, stable order on ties.
    np.testing.assert_allclose(priorities, [0.5, 0.5, 1.0, 1.0, 1.5])
    assert boxes.tolist() == [[0, 0, 2, 2], [0, 0, 9, 9], [1, 1, 2, 2], [5, 5, 6, 6], [0, 0, 1, 1]]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        SelectiveSearch(mode="fastest")
