"""Proposal quality (Uijlings et al., IJCV 2013, section 4; Hosang et al. 2015).

For every ground-truth box, the best overlap is the highest IoU any proposal of its
image reaches. From those:
  recall@t  the fraction of ground-truth boxes whose best overlap is >= t,
  ABO       the average best overlap over all ground-truth boxes,
  MABO      the mean over classes of each class's average best overlap (the paper's measure).

Shapes: N proposals and G ground-truth boxes per image, xyxy in original pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rcnn_cli.boxes import box_iou


def best_overlaps(proposals: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """Best IoU of each ground-truth box over the proposals: float64 [G] (0 when N = 0)."""
    gt = torch.as_tensor(np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4))
    props = torch.as_tensor(np.asarray(proposals, dtype=np.float64).reshape(-1, 4))
    if len(gt) == 0 or len(props) == 0:
        return np.zeros(len(gt))
    best = np.zeros(len(gt))
    # Chunks keep the [G, N] matrix small for images with many proposals.
    for start in range(0, len(props), 4096):
        iou = box_iou(gt, props[start : start + 4096]).max(dim=1).values.numpy()
        best = np.maximum(best, iou)
    return best


def recall_at_iou(best: np.ndarray, threshold: float) -> float:
    """Fraction of ground-truth boxes with best overlap >= ``threshold`` (nan when G = 0)."""
    best = np.asarray(best, dtype=np.float64).reshape(-1)
    return float((best >= threshold).mean()) if len(best) else float("nan")


def mabo(best: np.ndarray, labels: np.ndarray | None = None) -> float:
    """Mean Average Best Overlap: the mean over classes of the mean best overlap of each
    class's ground-truth boxes. Without ``labels`` it is the plain average (ABO)."""
    best = np.asarray(best, dtype=np.float64).reshape(-1)
    if not len(best):
        return float("nan")
    if labels is None:
        return float(best.mean())
    labels = np.asarray(labels).reshape(-1)
    return float(np.mean([best[labels == c].mean() for c in np.unique(labels)]))


@dataclass(frozen=True)
class ProposalQuality:
    """Summary of proposals over a set of images."""

    num_images: int
    num_gt: int
    boxes_per_image: float
    recall_50: float
    recall_70: float
    abo: float
    mabo: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "images": self.num_images,
            "gt_boxes": self.num_gt,
            "boxes/img": self.boxes_per_image,
            "recall@0.5": self.recall_50,
            "recall@0.7": self.recall_70,
            "ABO": self.abo,
            "MABO": self.mabo,
        }


def evaluate_proposals(
    images: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> ProposalQuality:
    """``images``: (proposals [N, 4], gt_boxes [G, 4], gt_labels [G]) per image; pass only
    the ground truth to count (e.g. without VOC "difficult" boxes)."""
    overlaps, labels, counts = [], [], []
    for proposals, gt_boxes, gt_labels in images:
        overlaps.append(best_overlaps(proposals, gt_boxes))
        labels.append(np.asarray(gt_labels).reshape(-1))
        counts.append(len(proposals))
    best = np.concatenate(overlaps) if overlaps else np.zeros(0)
    all_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    return ProposalQuality(
        num_images=len(counts),
        num_gt=len(best),
        boxes_per_image=float(np.mean(counts)) if counts else float("nan"),
        recall_50=recall_at_iou(best, 0.5),
        recall_70=recall_at_iou(best, 0.7),
        abo=mabo(best),
        mabo=mabo(best, all_labels),
    )


def evaluate_records(records: Iterable[Any], boxes_of: Callable[[Any], np.ndarray]) -> ProposalQuality:
    """:func:`evaluate_proposals` over dataset records, with each image's proposals from
    ``boxes_of(record)``; VOC "difficult" boxes are left out of the ground truth (as the paper)."""

    def triples() -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for record in records:
            keep = ~record.difficult
            yield boxes_of(record), record.boxes[keep], record.labels[keep]

    return evaluate_proposals(triples())
