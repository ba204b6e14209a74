"""PASCAL VOC average precision, as the VOC devkit computes it, vectorized with numpy.

Two summaries of one precision/recall curve:

- ``use_07_metric=True``: the VOC2007 "11-point" AP, the mean over recall levels r in {0, 0.1, ..., 1}
  of the highest precision reached at a recall >= r (the number reported by R-CNN and Fast R-CNN on VOC07).
- ``use_07_metric=False``: the VOC2010+ AP, the exact area under the interpolated curve
  (precision made monotonically decreasing, then integrated where recall changes).

Matching follows the devkit: detections of one class are taken in decreasing score order; each one is
matched to the ground-truth box of the same image with the highest IoU. If that IoU is >= the threshold
(0.5) and the box is ``difficult``, the detection is ignored (neither TP nor FP); if the box is not yet
taken it is a TP and the box is taken; otherwise (duplicate, or IoU too low) an FP. Difficult boxes do not
count in the number of positives. IoU uses our continuous box convention: area = (x2 - x1) * (y2 - y1).

Shape shorthand: D detections, G ground-truth boxes, I images, K classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroundTruth:
    """The ground truth of one image. ``boxes`` float [G, 4] xyxy, ``labels`` int [G] in 1..K,
    ``difficult`` bool [G]. An :class:`rcnn_cli.data.ImageRecord` has the same fields."""

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray


@dataclass(frozen=True)
class Detections:
    """All detections of a dataset, flat: ``image_index`` int [D] (position in the ground-truth list),
    ``labels`` int [D] in 1..K, ``scores`` float [D], ``boxes`` float [D, 4] xyxy in original pixels."""

    image_index: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray

    @staticmethod
    def empty() -> Detections:
        return Detections(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
            np.zeros((0, 4), np.float32),
        )


@dataclass(frozen=True)
class VocResult:
    """Per-class AP (index k-1 for class k; NaN for a class with no positive ground truth) and the mean
    over classes that have positives, for both VOC metrics."""

    ap_07: np.ndarray
    ap_area: np.ndarray
    num_positives: np.ndarray
    num_detections: np.ndarray

    @property
    def map_07(self) -> float:
        return _nanmean(self.ap_07)

    @property
    def map_area(self) -> float:
        return _nanmean(self.ap_area)


def _nanmean(values: np.ndarray) -> float:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """AP of one precision/recall curve (arrays [D], in decreasing score order).

    11-point: mean over r in {0, .1, ..., 1} of max(precision[recall >= r]) (0 when no point reaches r).
    Area: the precision envelope (max precision at any higher recall) integrated over recall.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if use_07_metric:
        levels = np.linspace(0.0, 1.0, 11)
        # reached[l, d]: point d reaches recall level l; the best precision among those, or 0.
        reached = recall[None, :] >= levels[:, None]
        best = np.where(reached, precision[None, :], 0.0).max(axis=1, initial=0.0)
        return float(best.mean())
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    # The envelope: precision at recall r becomes the best precision at any recall >= r.
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changed = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changed + 1] - mrec[changed]) * mpre[changed + 1]))


def _aligned_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of a[..., 4] with b[..., 4] (broadcast), continuous convention."""
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_detections(
    det_image: np.ndarray,
    det_scores: np.ndarray,
    det_boxes: np.ndarray,
    gt: Sequence[tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Devkit matching for ONE class.

    Args:
        det_image: int [D], image index of each detection.
        det_scores: float [D].
        det_boxes: float [D, 4].
        gt: per image, (boxes float [G_i, 4], difficult bool [G_i]) of this class only.
    Returns:
        (tp bool [D], fp bool [D], order int [D]); tp/fp are in decreasing score order (stable for ties),
        ``order`` maps them back to the input detections. A detection can be neither (difficult match).
    """
    order = np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable")
    D = order.size
    if D == 0:
        return np.zeros(0, bool), np.zeros(0, bool), order
    images = np.asarray(det_image, dtype=np.int64)[order]
    boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)[order]

    # Pad the ground truth to [I, Gmax, 4] so that every detection meets its image's boxes in one go.
    counts = np.array([len(b) for b, _ in gt], dtype=np.int64)
    Gmax = int(counts.max(initial=0))
    if Gmax == 0:
        return np.zeros(D, bool), np.ones(D, bool), order
    padded = np.zeros((len(gt), Gmax, 4), dtype=np.float64)
    difficult = np.zeros((len(gt), Gmax), dtype=bool)
    valid = np.arange(Gmax)[None, :] < counts[:, None]
    for i, (b, d) in enumerate(gt):
        padded[i, : len(b)] = b
        difficult[i, : len(b)] = d

    iou = _aligned_iou(boxes[:, None, :], padded[images])  # [D, Gmax]
    iou = np.where(valid[images], iou, -1.0)
    best = iou.argmax(axis=1)
    best_iou = iou[np.arange(D), best]
    hit = best_iou >= iou_threshold
    hit_difficult = hit & difficult[images, best]
    candidate = hit & ~hit_difficult
    # Among candidates for the same (image, box), only the first in score order is a TP; the rest are
    # duplicates (FP). np.unique's return_index gives exactly those first occurrences.
    key = images * Gmax + best
    cand_idx = np.flatnonzero(candidate)
    _, first = np.unique(key[cand_idx], return_index=True)
    tp = np.zeros(D, bool)
    tp[cand_idx[first]] = True
    fp = ~tp & ~hit_difficult
    return tp, fp, order


def pr_curve(tp: np.ndarray, fp: np.ndarray, num_positives: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision [D'] after each detection (ignored detections dropped)."""
    counted = tp | fp
    ctp = np.cumsum(tp[counted], dtype=np.float64)
    cfp = np.cumsum(fp[counted], dtype=np.float64)
    recall = ctp / max(num_positives, 1)
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    return recall, precision


def voc_evaluate(
    ground_truth: Sequence[GroundTruth],
    detections: Detections,
    num_classes: int,
    iou_threshold: float = 0.5,
) -> VocResult:
    """VOC07 11-point AP and VOC2010+ area AP for classes 1..K.

    Args:
        ground_truth: one entry per image (anything with ``boxes``, ``labels``, ``difficult``).
        detections: flat detections whose ``image_index`` indexes ``ground_truth``.
        num_classes: K, the number of classes without background.
    """
    ap_07 = np.full(num_classes, np.nan)
    ap_area = np.full(num_classes, np.nan)
    npos = np.zeros(num_classes, dtype=np.int64)
    ndet = np.zeros(num_classes, dtype=np.int64)
    labels_all = [np.asarray(g.labels, dtype=np.int64).reshape(-1) for g in ground_truth]
    boxes_all = [np.asarray(g.boxes, dtype=np.float64).reshape(-1, 4) for g in ground_truth]
    diff_all = [np.asarray(g.difficult, dtype=bool).reshape(-1) for g in ground_truth]
    det_labels = np.asarray(detections.labels, dtype=np.int64)
    for k in range(1, num_classes + 1):
        gt_k = [(b[lab == k], d[lab == k]) for b, lab, d in zip(boxes_all, labels_all, diff_all, strict=True)]
        npos[k - 1] = sum(int((~d).sum()) for _, d in gt_k)
        sel = det_labels == k
        ndet[k - 1] = int(sel.sum())
        if npos[k - 1] == 0:
            continue  # AP undefined without positives (the devkit skips such classes too)
        tp, fp, _ = match_detections(
            detections.image_index[sel], detections.scores[sel], detections.boxes[sel], gt_k, iou_threshold
        )
        recall, precision = pr_curve(tp, fp, int(npos[k - 1]))
        ap_07[k - 1] = voc_ap(recall, precision, use_07_metric=True)
        ap_area[k - 1] = voc_ap(recall, precision, use_07_metric=False)
    return VocResult(ap_07=ap_07, ap_area=ap_area, num_positives=npos, num_detections=ndet)
