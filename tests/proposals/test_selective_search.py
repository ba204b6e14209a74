"""Selective Search end to end: modes, ranking, bounds, duplicates, objects found."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn_cli.proposals.base import finalize_boxes
from rcnn_cli.proposals.selective_search import (
    SelectiveSearch,
    demoted_scores,
    rank_hierarchies,
    suppress_near_duplicates,
)
from rcnn_cli.proposals.strategies import PAPER_FAST_KS, strategies


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


def test_strategy_counts() -> None:
    # single and quality are the paper's; fast adds k = 200 to the paper's k = 50, 100 (issue 16:
    # 2 colour spaces x 3 k x 2 similarity sets; the paper's 8 are SelectiveSearch(ks=PAPER_FAST_KS)).
    assert len(strategies("single")) == 1
    assert len(strategies("fast")) == 12
    assert len(strategies("quality")) == 80
    assert SelectiveSearch(mode="fast").params()["ks"] == [50, 100, 200]
    assert SelectiveSearch(mode="fast", ks=PAPER_FAST_KS).params()["ks"] == [50, 100]


def test_near_duplicates_are_dropped_in_rank_order() -> None:
    boxes = np.array(
        [[0, 0, 100, 100], [1, 0, 100, 100], [50, 50, 90, 90], [0, 0, 99, 101], [0, 0, 50, 50]], np.float32
    )
    # Boxes 1 and 3 overlap box 0 by IoU 0.99: dropped; 2 and 4 are other boxes.
    np.testing.assert_array_equal(suppress_near_duplicates(boxes, 0.9, 0), [0, 2, 4])
    np.testing.assert_array_equal(suppress_near_duplicates(boxes, 0.9, 2), [0, 2])
    # Too few distinct boxes for the cap: the best-ranked dropped ones come back, after the kept
    # ones, so that the first boxes stay distinct.
    np.testing.assert_array_equal(suppress_near_duplicates(boxes, 0.9, 4), [0, 2, 4, 1])
    np.testing.assert_array_equal(suppress_near_duplicates(boxes, 0.9, 5), [0, 2, 4, 1, 3])
    np.testing.assert_array_equal(suppress_near_duplicates(boxes, 1.0, 0), [0, 1, 2, 3, 4])
    assert len(suppress_near_duplicates(boxes[:0], 0.9, 10)) == 0


def test_selective_search_keeps_no_near_duplicates_under_the_cap() -> None:
    image, objects = _scene(2)
    plain = SelectiveSearch(mode="fast", max_proposals=0, near_duplicate_iou=None).propose(image)
    p = SelectiveSearch(mode="fast", max_proposals=0, near_duplicate_iou=0.8).propose(image)
    assert 0 < len(p) < len(plain)
    iou = _iou(p.boxes, p.boxes)
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.8
    # What is kept is the better-ranked copy: a subsequence of the plain ranking, same scores.
    rows = {tuple(b): i for i, b in enumerate(plain.boxes.tolist())}
    index = [rows[tuple(b)] for b in p.boxes.tolist()]
    assert index == sorted(index)
    np.testing.assert_array_equal(p.scores, plain.scores[index])
    # An exact box that went was overlapped by more than 0.8 by a kept one, which then overlaps
    # the object by more than 0.8 too.
    assert (_iou(objects, plain.boxes).max(axis=1) == 1.0).all()
    assert (_iou(objects, p.boxes).max(axis=1) > 0.8).all()
    # A cap above what survives is still filled: the distinct boxes first, as without a cap, then
    # the best-ranked near-duplicates, with scores that keep the whole file descending.
    full = SelectiveSearch(mode="fast", max_proposals=len(p) + 5, near_duplicate_iou=0.8).propose(image)
    assert len(full) == len(p) + 5
    np.testing.assert_array_equal(full.boxes[: len(p)], p.boxes)
    np.testing.assert_array_equal(full.scores[: len(p)], p.scores)
    assert (np.diff(full.scores) < 0).all()
    back = [rows[tuple(b)] for b in full.boxes[len(p) :].tolist()]
    assert back == sorted(back) and not set(back) & set(index)


def test_demoted_scores_put_the_taken_back_run_below_the_kept_one() -> None:
    kept_then_back = np.array([-1.0, -2.0, -5.0, -1.5, -3.0], np.float32)
    out = demoted_scores(kept_then_back)
    assert (np.diff(out) < 0).all()
    np.testing.assert_array_equal(out[:3], kept_then_back[:3])
    # The taken-back run keeps its own gaps (-1.5 -> -3.0).
    np.testing.assert_allclose(out[3] - out[4], 1.5)
    already = np.array([-1.0, -2.0, -3.0], np.float32)
    np.testing.assert_array_equal(demoted_scores(already), already)


def test_without_near_duplicate_suppression_only_exact_duplicates_go() -> None:
    image, _ = _scene(3)
    method = SelectiveSearch(mode="fast", max_proposals=0, near_duplicate_iou=None)
    boxes, priorities = rank_hierarchies(method.hierarchies(image), np.random.default_rng(method.seed))
    boxes = boxes.astype(np.float32)
    boxes[:, 2:] += 1.0
    expected = finalize_boxes(boxes, -priorities, 128, 96, 0.0, 0)
    np.testing.assert_array_equal(method.propose(image).boxes, expected.boxes)


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


def test_unknown_mode_and_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        SelectiveSearch(mode="fastest")
    with pytest.raises(ValueError, match="ks"):
        SelectiveSearch(ks=())
    with pytest.raises(ValueError, match="near_duplicate_iou"):
        SelectiveSearch(near_duplicate_iou=0.0)
