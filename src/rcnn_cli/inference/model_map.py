"""One number for scripts and tests: the VOC mAP of a saved model on a set of images, through the same
path as ``rcnn detect`` followed by ``rcnn evaluate``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def checkpoint_voc_map(
    checkpoint: Any, records: Sequence[Any], proposals: dict[str, Any] | None = None
) -> float:
    """VOC area mAP@0.5 (a fraction) of the model saved in ``checkpoint`` on ``records``, detecting with
    the default test-time settings on ``proposals`` ({image_id: Tensor[P, 4]}), on the CPU; None: a
    Faster R-CNN's own RPN proposes."""
    from rcnn_cli.data import read_record
    from rcnn_cli.evaluation.coco_format import coco_image_ids, detections_to_coco
    from rcnn_cli.evaluation.evaluate import evaluate_results
    from rcnn_cli.inference.detect import DetectConfig, Detector
    from rcnn_cli.models import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    detector = Detector(model, meta["class_names"], DetectConfig(), "cpu")
    ids = coco_image_ids(r.image_id for r in records)
    results: list[dict[str, Any]] = []
    for r in records:
        boxes = None if proposals is None else np.asarray(proposals[r.image_id])
        found = detector.detect(read_record(r), boxes)
        results += detections_to_coco(ids[r.image_id], found.boxes.numpy(), found.scores, found.labels)
    mean = evaluate_results(records, meta["class_names"], results, coco=False)["mean"]
    return (mean["voc_ap"] or 0.0) / 100.0
