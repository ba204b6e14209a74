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
    """The report dict of :func:`rcnn_cli.evaluation.report.detection_report` for COCO ``results``.

    Detections of images outside ``records`` (e.g. a detections file made for a whole dataset, evaluated
    on one split) are left out and counted in ``report["ignored_detections"]``; when no detection at all
    belongs to ``records`` the ids cannot be ours for this split, and that is an error.
    """
    known = {str(r.image_id) for r in records}
    kept = [entry for entry in results if str(entry["image_id"]) in known]
    if results and not kept:
        results_to_detections(results, records, len(class_names), source=source)  # raises, naming ids
    ignored = len(results) - len(kept)
    results = kept
    detections = results_to_detections(results, records, len(class_names), source=source)
    voc = voc_evaluate(records, detections, len(class_names), iou_threshold=iou_threshold)
    coco_result = coco_evaluate(records, class_names, results) if coco else None
    report = detection_report(class_names, voc, coco_result)
    report["images"] = len(records)
    report["ignored_detections"] = ignored
    report["iou_threshold"] = iou_threshold
    return report


def checkpoint_voc_map(checkpoint: Any, records: Sequence[Any], proposals: dict[str, Any]) -> float:
    """VOC area mAP@0.5 (a fraction) of the model saved in ``checkpoint`` on ``records``, detecting with
    the default test-time settings on ``proposals`` ({image_id: Tensor[P, 4]}), on the CPU: the path of
    ``rcnn detect`` + ``rcnn evaluate``, in one call for scripts and tests that want one number."""
    import numpy as np

    from rcnn_cli.data import read_record
    from rcnn_cli.evaluation.coco_format import coco_image_ids, detections_to_coco
    from rcnn_cli.inference.detect import DetectConfig, Detector
    from rcnn_cli.models import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    detector = Detector(model, meta["class_names"], DetectConfig(), "cpu")
    ids = coco_image_ids(r.image_id for r in records)
    results: list[dict[str, Any]] = []
    for r in records:
        found = detector.detect(read_record(r), np.asarray(proposals[r.image_id]))
        results += detections_to_coco(ids[r.image_id], found.boxes.numpy(), found.scores, found.labels)
    mean = evaluate_results(records, meta["class_names"], results, coco=False)["mean"]
    return (mean["voc_ap"] or 0.0) / 100.0
