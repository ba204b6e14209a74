"""Recall against IoU (Hosang et al., PAMI 2016; Faster R-CNN, Ren et al. 2015, Fig. 4).

A ground-truth box is recalled at IoU ``t`` when its best overlap (the highest IoU any proposal of its
image reaches, :func:`rcnn_cli.evaluation.proposal_recall.best_overlaps`) is ``>= t``. Recall at every
threshold of :data:`IOU_THRESHOLDS` draws the curve; its mean over those thresholds is the average
recall (AR). A proposal method is measured at its best ``N`` boxes per image (the proposals folder
stores them best first), so that methods are compared at the same budget.

Shapes: per image, P proposals float [P, 4] (best first) and G ground-truth boxes float [G, 4], both
``x1, y1, x2, y2`` in original pixels; T thresholds; K budgets (values of N).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rcnn_cli.evaluation.proposal_recall import best_overlaps, mabo

#: 0.5, 0.55, ..., 0.95 (rounded, so that 0.7 is the float 0.7 and an IoU of exactly 0.7 counts).
IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def recall_per_threshold(best: np.ndarray, thresholds: Sequence[float] = IOU_THRESHOLDS) -> np.ndarray:
    """Fraction of ground-truth boxes whose best overlap is >= each threshold.

    Args:
        best: float [G], the best overlap of every ground-truth box (of all images together).
        thresholds: T IoU thresholds.
    Returns:
        float64 [T]; nan everywhere when G = 0.
    """
    best = np.asarray(best, dtype=np.float64).reshape(-1)
    limits = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if not len(best):
        return np.full(len(limits), np.nan)
    return (best[None, :] >= limits[:, None]).mean(axis=1)


def recall_vs_iou(
    boxes_per_image: Iterable[np.ndarray],
    gt_per_image: Iterable[np.ndarray],
    thresholds: Sequence[float] = IOU_THRESHOLDS,
    top_n: int | None = None,
) -> np.ndarray:
    """Recall at each IoU threshold of proposals against the ground truth, over a set of images.

    Args:
        boxes_per_image: one float [P_i, 4] array of proposals per image, best first.
        gt_per_image: one float [G_i, 4] array of ground-truth boxes per image, in the same order (pass
            only the boxes to count, e.g. without VOC "difficult" ones).
        thresholds: T IoU thresholds (default 0.5, 0.55, ..., 0.95).
        top_n: use only each image's first ``top_n`` proposals (all when None).
    Returns:
        float64 [T], recall at each threshold (nan when there is no ground-truth box).
    """
    best = [
        best_overlaps(_top(boxes, top_n), gt) for boxes, gt in zip(boxes_per_image, gt_per_image, strict=True)
    ]
    return recall_per_threshold(np.concatenate(best) if best else np.zeros(0), thresholds)


@dataclass(frozen=True)
class RecallCurve:
    """Recall against IoU of one proposal source at one budget, over a set of images.

    ``recall`` is float64 [T] at ``thresholds`` [T]; ``boxes_per_image`` counts the proposals actually
    used (an image with fewer than ``top_n`` boxes brings all it has).
    """

    top_n: int | None
    thresholds: tuple[float, ...]
    recall: np.ndarray
    num_images: int
    num_gt: int
    boxes_per_image: float
    abo: float
    mabo: float

    @property
    def average_recall(self) -> float:
        """AR: the mean of ``recall`` over the thresholds (nan without ground truth)."""
        return float(np.mean(self.recall)) if len(self.recall) else float("nan")

    def recall_at(self, threshold: float) -> float:
        """Recall at one of ``thresholds`` (KeyError for another value)."""
        for t, r in zip(self.thresholds, self.recall, strict=True):
            if abs(t - threshold) < 1e-9:
                return float(r)
        raise KeyError(f"{threshold} is not one of the thresholds {self.thresholds}")


def recall_curves(
    images: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    top_ns: Sequence[int | None] = (None,),
    thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> list[RecallCurve]:
    """One :class:`RecallCurve` per budget in ``top_ns``, reading each image once.

    Args:
        images: (proposals float [P, 4] best first, gt_boxes float [G, 4], gt_labels int [G]) per image;
            the labels are only for MABO (the mean over classes of each class's average best overlap).
        top_ns: K budgets: each image's first N proposals (None: all of them).
        thresholds: T IoU thresholds.
    Returns:
        K curves, in the order of ``top_ns``.
    """
    overlaps: list[list[np.ndarray]] = [[] for _ in top_ns]
    counts: list[list[int]] = [[] for _ in top_ns]
    labels: list[np.ndarray] = []
    for proposals, gt_boxes, gt_labels in images:
        labels.append(np.asarray(gt_labels).reshape(-1))
        for k, n in enumerate(top_ns):
            kept = _top(proposals, n)
            overlaps[k].append(best_overlaps(kept, gt_boxes))
            counts[k].append(len(kept))
    all_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    curves = []
    for k, n in enumerate(top_ns):
        best = np.concatenate(overlaps[k]) if overlaps[k] else np.zeros(0)
        curves.append(
            RecallCurve(
                top_n=n,
                thresholds=tuple(float(t) for t in thresholds),
                recall=recall_per_threshold(best, thresholds),
                num_images=len(counts[k]),
                num_gt=len(best),
                boxes_per_image=float(np.mean(counts[k])) if counts[k] else float("nan"),
                abo=mabo(best),
                mabo=mabo(best, all_labels),
            )
        )
    return curves


def recall_curves_of_records(
    records: Iterable[Any],
    boxes_of: Callable[[Any], np.ndarray],
    top_ns: Sequence[int | None] = (None,),
    thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> list[RecallCurve]:
    """:func:`recall_curves` over dataset records, each image's proposals from ``boxes_of(record)``;
    VOC "difficult" boxes are left out of the ground truth, as in
    :func:`rcnn_cli.evaluation.proposal_recall.evaluate_records`."""

    def triples() -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for record in records:
            keep = ~record.difficult
            yield boxes_of(record), record.boxes[keep], record.labels[keep]

    return recall_curves(triples(), top_ns, thresholds)


def _top(boxes: np.ndarray, top_n: int | None) -> np.ndarray:
    """The first ``top_n`` rows of ``boxes`` float [P, 4] (all when None): [min(P, top_n), 4]."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    return boxes if top_n is None else boxes[:top_n]
