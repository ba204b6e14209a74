"""COCO AP@[.5:.95], AP50 and AP75 computed by pycocotools, the reference users trust.

We do not reimplement COCO's metric: our ground truth is written as a COCO dict in memory
(:func:`rcnn_cli.evaluation.coco_format.dataset_to_coco`), our detections JSON is loaded with ``loadRes``
exactly as a user would load it, and ``COCOeval`` does the rest. Per-class numbers are read from
``COCOeval.eval["precision"]`` (shape [T, R, K, A, M]: IoU thresholds, recall points, classes, area
ranges, max-detections settings), area range "all", 100 detections per image, as COCO's summary does.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CocoResult:
    """Per-class arrays [K] (NaN for a class without ground truth) and COCO's own summary numbers."""

    ap: np.ndarray
    ap50: np.ndarray
    ap75: np.ndarray
    mean_ap: float
    mean_ap50: float
    mean_ap75: float


def _per_class(precision: np.ndarray, iou_index: slice | int) -> np.ndarray:
    """Mean precision over (IoU thresholds, recall points) per class; -1 marks 'no ground truth'."""
    p = precision[iou_index, :, :, 0, -1]  # area "all", maxDets 100
    p = p.reshape(-1, p.shape[-2], p.shape[-1]) if p.ndim == 3 else p[None]
    out = np.full(p.shape[-1], np.nan)
    for k in range(p.shape[-1]):
        valid = p[:, :, k][p[:, :, k] > -1]
        if valid.size:
            out[k] = valid.mean()
    return out


def coco_evaluate(
    records: Sequence[Any], class_names: Sequence[str], results: list[dict[str, Any]]
) -> CocoResult:
    """COCO box AP of ``results`` (COCO results entries, our ids) against ``records`` (ImageRecord-like)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from rcnn_cli.evaluation.coco_format import coco_image_ids, dataset_to_coco

    K = len(class_names)
    has_gt = np.zeros(K, dtype=bool)
    for record in records:
        labels = np.asarray(record.labels, dtype=np.int64).reshape(-1)
        has_gt[labels[(labels >= 1) & (labels <= K)] - 1] = True
    if not results:
        # loadRes cannot take an empty list; no detection means zero AP wherever there is ground truth.
        zeros = np.where(has_gt, 0.0, np.nan)
        return CocoResult(zeros, zeros, zeros, 0.0, 0.0, 0.0)

    # Accept ids as str or int whatever the file holds, as our readers do.
    ids = {str(k): v for k, v in coco_image_ids(r.image_id for r in records).items()}
    results = [{**entry, "image_id": ids.get(str(entry["image_id"]), entry["image_id"])} for entry in results]
    quiet = io.StringIO()  # pycocotools prints its progress and summary to stdout
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = dataset_to_coco(records, class_names)
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"]
    iou_thrs = evaluator.params.iouThrs
    i50 = int(np.argmin(np.abs(iou_thrs - 0.5)))
    i75 = int(np.argmin(np.abs(iou_thrs - 0.75)))
    stats = evaluator.stats

    def mean_or_nan(v: float) -> float:
        return float(v) if v > -1 else float("nan")

    return CocoResult(
        ap=_per_class(precision, slice(None)),
        ap50=_per_class(precision, i50),
        ap75=_per_class(precision, i75),
        mean_ap=mean_or_nan(stats[0]),
        mean_ap50=mean_or_nan(stats[1]),
        mean_ap75=mean_or_nan(stats[2]),
    )
