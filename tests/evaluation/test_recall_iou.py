"""Recall against IoU on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn_cli.evaluation.recall_iou import (
    IOU_THRESHOLDS,
    recall_curves,
    recall_curves_of_records,
    recall_per_threshold,
    recall_vs_iou,
)

# Two 10x10 ground-truth boxes. Proposal a covers 6 of gt0's 10 rows (IoU 60/100 = 0.6); proposal b
# covers 8 of gt1's 10 columns (IoU 80/100 = 0.8). Both IoUs are exact in float64.
GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
A_06 = [0, 0, 10, 6]
B_08 = [20, 20, 28, 30]
FAR = [100, 100, 110, 110]  # overlaps nothing


def test_the_thresholds_are_0_5_to_0_95_in_steps_of_0_05() -> None:
    assert IOU_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_recall_at_each_threshold_by_hand() -> None:
    recall = recall_vs_iou([np.array([A_06, B_08], np.float32)], [GT])
    # Both recalled up to 0.6 (an IoU equal to the threshold counts), only gt1 up to 0.8, none above.
    expected = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0]
    assert recall.shape == (10,) and recall.tolist() == expected
    assert dict(zip(IOU_THRESHOLDS, recall.tolist(), strict=True))[0.7] == 0.5


def test_the_order_of_proposals_does_not_matter_without_a_budget() -> None:
    forward = recall_vs_iou([np.array([A_06, FAR, B_08], np.float32)], [GT])
    backward = recall_vs_iou([np.array([B_08, FAR, A_06], np.float32)], [GT])
    assert forward.tolist() == backward.tolist()


def test_top_n_keeps_only_the_best_boxes() -> None:
    ranked = np.array([B_08, FAR, A_06], np.float32)  # best first: b, then a box far away, then a
    # N=1: only b, so gt0 is never recalled; N=2 adds nothing; N=3 adds a (recall 1 up to 0.6).
    assert recall_vs_iou([ranked], [GT], top_n=1).tolist() == [0.5] * 7 + [0.0] * 3
    assert recall_vs_iou([ranked], [GT], top_n=2).tolist() == [0.5] * 7 + [0.0] * 3
    assert recall_vs_iou([ranked], [GT], top_n=3).tolist() == [1.0] * 3 + [0.5] * 4 + [0.0] * 3
    assert recall_vs_iou([ranked], [GT], top_n=1000).tolist() == recall_vs_iou([ranked], [GT]).tolist()


def test_recall_pools_the_ground_truth_of_every_image() -> None:
    # Image 1: both gt found (IoU 1); image 2: its one gt box missed. 2 of 3 found at every threshold.
    images = [GT, np.zeros((0, 4), np.float32)]
    gts = [GT, GT[:1]]
    np.testing.assert_allclose(recall_vs_iou(images, gts), np.full(10, 2 / 3))


def test_no_ground_truth_is_nan_and_the_inputs_must_pair_up() -> None:
    assert np.isnan(recall_vs_iou([], [])).all()
    assert np.isnan(recall_per_threshold(np.zeros(0), (0.5, 0.7))).tolist() == [True, True]
    with pytest.raises(ValueError):
        recall_vs_iou([GT], [GT, GT])


def test_curves_at_several_budgets_in_one_pass() -> None:
    ranked = np.array([B_08, FAR, A_06], np.float32)
    images = [(ranked, GT, np.array([1, 2])), (ranked[:1], GT[1:], np.array([2]))]
    one, all_ = recall_curves(images, top_ns=(1, None))
    assert (one.top_n, all_.top_n) == (1, None)
    assert (one.num_images, one.num_gt) == (all_.num_images, all_.num_gt) == (2, 3)
    assert (one.boxes_per_image, all_.boxes_per_image) == (1.0, 2.0)
    # N=1: gt1 of both images found at 0.8; gt0 missed. All: gt0 found at 0.6 as well.
    np.testing.assert_allclose(one.recall, [2 / 3] * 7 + [0.0] * 3)
    np.testing.assert_allclose(all_.recall, [1.0] * 3 + [2 / 3] * 4 + [0.0] * 3)
    assert one.recall_at(0.7) == pytest.approx(2 / 3) and all_.recall_at(0.5) == 1.0
    assert all_.average_recall == pytest.approx((3 * 1.0 + 4 * 2 / 3) / 10)
    # ABO: best overlaps 0.6, 0.8, 0.8; MABO: class 1 (0.6) and class 2 ((0.8 + 0.8) / 2).
    assert all_.abo == pytest.approx(2.2 / 3) and all_.mabo == pytest.approx((0.6 + 0.8) / 2)
    with pytest.raises(KeyError):
        one.recall_at(0.42)


def test_records_leave_difficult_boxes_out() -> None:
    class Record:
        boxes = GT
        labels = np.array([1, 1])
        difficult = np.array([False, True])

    (curve,) = recall_curves_of_records([Record()], lambda record: np.array([A_06], np.float32))
    assert curve.num_gt == 1 and curve.recall.tolist() == [1.0] * 3 + [0.0] * 7
