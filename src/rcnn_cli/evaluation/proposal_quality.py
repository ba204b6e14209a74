"""MINIMAL STAND-IN for proposal quality (recall at IoU 0.5/0.7, MABO, boxes per image).

TEMPORARY: ``rcnn_cli.evaluation.proposal_recall`` (the proposals helper's module) replaces this once it
lands in main; ``rcnn evaluate --proposals`` switches to it then and this file is deleted.

For every ground-truth box, its best overlap is the highest IoU with any proposal of its image.
Recall@t = share of boxes whose best overlap is >= t; ABO of a class = mean best overlap of its boxes;
MABO = mean of the ABOs over classes (Selective Search, Uijlings et al. 2013). Difficult boxes count too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from rcnn_cli.boxes import box_iou


def proposal_quality(
    records: Sequence[Any],
    read_boxes: Callable[[Any], np.ndarray],
    num_classes: int,
    thresholds: Sequence[float] = (0.5, 0.7),
) -> dict[str, Any]:
    """Summary dict: ``recall@<t>`` per threshold, ``mabo``, ``boxes_per_image``, ``images``, ``gt_boxes``."""
    best_all: list[np.ndarray] = []
    labels_all: list[np.ndarray] = []
    counts = []
    for record in records:
        boxes = np.asarray(read_boxes(record), dtype=np.float32).reshape(-1, 4)
        counts.append(len(boxes))
        gt = np.asarray(record.boxes, dtype=np.float32).reshape(-1, 4)
        if len(gt) == 0:
            continue
        if len(boxes) == 0:
            best = np.zeros(len(gt))
        else:
            best = box_iou(torch.from_numpy(gt), torch.from_numpy(boxes)).max(dim=1).values.double().numpy()
        best_all.append(best)
        labels_all.append(np.asarray(record.labels).reshape(-1))
    best = np.concatenate(best_all) if best_all else np.zeros(0)
    labels = np.concatenate(labels_all) if labels_all else np.zeros(0, np.int64)
    abo = [best[labels == k].mean() for k in range(1, num_classes + 1) if (labels == k).any()]
    summary: dict[str, Any] = {
        f"recall@{t:g}": float((best >= t).mean()) if best.size else 0.0 for t in thresholds
    }
    summary.update(
        mabo=float(np.mean(abo)) if abo else 0.0,
        boxes_per_image=float(np.mean(counts)) if counts else 0.0,
        images=len(records),
        gt_boxes=int(best.size),
    )
    return summary
