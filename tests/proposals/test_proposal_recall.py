"""recall_at_iou, MABO and evaluate_proposals on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn_cli.evaluation.proposal_recall import best_overlaps, evaluate_proposals, mabo, recall_at_iou


def test_best_overlaps_by_hand() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    props = np.array([[0, 0, 10, 5], [0, 0, 10, 10], [25, 20, 35, 30]], np.float32)
    # gt0: exact match 1.0; gt1: overlap 5x10 = 50, union 150 -> 1/3.
    np.testing.assert_allclose(best_overlaps(props, gt), [1.0, 1 / 3])
    assert best_overlaps(np.zeros((0, 4)), gt).tolist() == [0, 0]


def test_recall_and_mabo() -> None:
    best = np.array([0.9, 0.6, 0.4, 0.75])
    assert recall_at_iou(best, 0.5) == 0.75
    assert recall_at_iou(best, 0.7) == 0.5
    assert mabo(best) == pytest.approx(0.6625)
    # Class 1: (0.9 + 0.6) / 2 = 0.75; class 2: (0.4 + 0.75) / 2 = 0.575 -> mean 0.6625 too; make it differ:
    assert mabo(best, np.array([1, 1, 1, 2])) == pytest.approx(((0.9 + 0.6 + 0.4) / 3 + 0.75) / 2)


def test_evaluate_proposals_counts() -> None:
    gt = np.array([[0, 0, 10, 10]], np.float32)
    q = evaluate_proposals(
        [
            (np.array([[0, 0, 10, 10], [1, 1, 2, 2]], np.float32), gt, np.array([1])),
            (np.zeros((0, 4), np.float32), gt, np.array([2])),
        ]
    )
    assert (q.num_images, q.num_gt, q.boxes_per_image) == (2, 2, 1.0)
    assert q.recall_50 == 0.5 and q.abo == 0.5 and q.mabo == 0.5
