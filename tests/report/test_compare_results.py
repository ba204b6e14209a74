"""The report's arithmetic by hand: test-time stages grouped from ``rcnn detect --timing``'s seconds, the
ratios between methods beside the papers', and the precision–recall curve of a tiny case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rcnn_cli.data.records import ImageRecord
from rcnn_cli.report.results import PAPER_RATIOS, pr_curves, ratios, stage_ms_per_image


def test_stages_are_grouped_per_image_and_proposals_added() -> None:
    timing = {
        "images": 4,
        "seconds": {"read": 0.4, "conv": 2.0, "roi_pool": 0.4, "fc6": 0.8, "fc7": 0.4, "nms": 0.04},
    }
    got = stage_ms_per_image(timing, proposal_seconds=0.5)
    assert got == pytest.approx(
        {"proposals": 500.0, "conv": 600.0, "region features": 100.0, "head": 300.0, "nms": 10.0}
    )


def test_ratios_beside_the_papers() -> None:
    rows = {
        "rcnn": {"test_ms_per_image": {"total": 3000.0}, "train_seconds": 900.0},
        "fast": {"test_ms_per_image": {"total": 300.0, "proposals": 250.0}, "train_seconds": 300.0},
        "faster": {"test_ms_per_image": {"total": 120.0, "proposals": 5.0}, "train_seconds": 300.0},
    }
    got = {r["what"]: (r["measured"], r["paper"]) for r in ratios(rows, ss_seconds=0.25)}
    assert got["Fast R-CNN vs R-CNN, test time"] == pytest.approx((10.0, PAPER_RATIOS["fast_vs_rcnn_test"]))
    assert got["Fast R-CNN vs R-CNN, training time"] == pytest.approx((3.0, 9.0))
    assert got["Selective Search vs RPN, proposal time"] == pytest.approx((50.0, 150.0))  # 250 ms / 5 ms
    assert "Fast R-CNN vs SPPnet, test time" not in got  # no SPPnet row: no ratio, never a made-up one


def test_pr_curve_of_a_tiny_case() -> None:
    """Two gt boxes of class 1 in one image; detections by score: a hit, a miss, the second hit, a
    duplicate of the first. Precision after each: 1, 1/2, 2/3, 2/4; recall 1/2, 1/2, 1, 1."""
    record = ImageRecord(
        "a",
        path=Path("a.jpg"),
        width=100,
        height=100,
        boxes=np.array([[0, 0, 10, 10], [50, 50, 70, 70]], np.float32),
        labels=np.array([1, 1]),
        difficult=np.array([False, False]),
    )
    detections = [
        {"image_id": "a", "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": "a", "category_id": 1, "bbox": [80, 80, 10, 10], "score": 0.8},
        {"image_id": "a", "category_id": 1, "bbox": [50, 50, 20, 20], "score": 0.7},
        {"image_id": "a", "category_id": 1, "bbox": [1, 1, 9, 9], "score": 0.6},
    ]
    (curve,) = pr_curves([record], detections, num_classes=1)
    assert curve["recall"] == [0.5, 0.5, 1.0, 1.0]
    assert curve["precision"] == pytest.approx([1.0, 0.5, 0.6667, 0.5], abs=1e-4)
