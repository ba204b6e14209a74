"""Detections against a dataset's ground truth: VOC07 11-point AP, VOC area AP and COCO AP in one report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rcnn_cli.evaluation.coco_ap import coco_evaluate
from rcnn_cli.evaluation.coco_format import results_to_detections
from rcnn_cli.evaluation.report import detection_report
from rcnn_cli.evaluation.voc_ap import voc_evaluate


def evaluate_results(
    records: Sequence[Any],
    class_names: Sequence[str],
    results: list[dict[str, Any]],
    *,
    iou_threshold: float = 0.5,
    coco: bool = True,
    source: str = "",
) -> dict[str, Any]:
    """The report dict of :func:`rcnn_cli.evaluation.report.detection_report` for COCO ``results``."""
    detections = results_to_detections(results, records, len(class_names), source=source)
    voc = voc_evaluate(records, detections, len(class_names), iou_threshold=iou_threshold)
    coco_result = coco_evaluate(records, class_names, results) if coco else None
    report = detection_report(class_names, voc, coco_result)
    report["images"] = len(records)
    report["iou_threshold"] = iou_threshold
    return report
