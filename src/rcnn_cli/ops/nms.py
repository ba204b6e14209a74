"""Greedy non-maximum suppression, as in R-CNN's detection post-processing.

Boxes are visited by decreasing score (a stable sort: equal scores keep index order);
a box is kept unless an already kept box overlaps it with IoU strictly greater than
``iou_threshold``. Boxes are continuous xyxy, area (x2 − x1)·(y2 − y1). Same kept
indices as ``torchvision.ops.nms``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rcnn_cli.ops import _extension
from rcnn_cli.ops._validate import OpInputError, check_device_dtype


def _check(op: str, boxes: Tensor, scores: Tensor, iou_threshold: float) -> float:
    if not isinstance(boxes, Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise OpInputError(f"{op}: boxes must be a Tensor[N, 4] (x1, y1, x2, y2), got {shape}")
    if not isinstance(scores, Tensor) or scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise OpInputError(f"{op}: scores must be a Tensor[{boxes.shape[0]}] matching boxes, got {shape}")
    if scores.device != boxes.device:
        raise OpInputError(f"{op}: boxes are on {boxes.device} but scores on {scores.device}")
    check_device_dtype(op, boxes, "boxes")
    if not scores.is_floating_point():
        raise OpInputError(f"{op}: scores must be floating point, got {scores.dtype}")
    threshold = float(iou_threshold)
    if math.isnan(threshold):
        raise OpInputError(f"{op}: iou_threshold must be a number, got {iou_threshold}")
    return threshold


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes kept by greedy NMS.

    Args:
        boxes: Tensor[N, 4] boxes (x1, y1, x2, y2), float.
        scores: Tensor[N] scores.
        iou_threshold: suppress boxes whose IoU with a kept box is > this.

    Returns:
        Tensor[M] int64 indices into ``boxes``, by decreasing score.
    """
    threshold = _check("nms", boxes, scores, iou_threshold)
    return _extension.ops().nms(boxes, scores, threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category: boxes with different ``idxs`` never suppress each other.

    Implemented per category (one :func:`nms` call per distinct index), which is exact,
    rather than torchvision's coordinate-offset trick, which moves boxes by large
    offsets and can change IoUs by rounding. The result equals the trick's whenever the
    trick is exact: kept indices by decreasing score, equal scores by index.

    Args:
        boxes: Tensor[N, 4]; scores: Tensor[N]; idxs: Tensor[N] integer category of each box.

    Returns:
        Tensor[M] int64 indices into ``boxes``, by decreasing score.
    """
    threshold = _check("batched_nms", boxes, scores, iou_threshold)
    if not isinstance(idxs, Tensor) or idxs.shape != scores.shape or idxs.is_floating_point():
        shape = tuple(idxs.shape) if isinstance(idxs, Tensor) else type(idxs).__name__
        raise OpInputError(f"batched_nms: idxs must be an integer Tensor[{boxes.shape[0]}], got {shape}")
    if idxs.device != boxes.device:
        raise OpInputError(f"batched_nms: idxs are on {idxs.device} but boxes on {boxes.device}")
    op = _extension.ops().nms
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    for category in torch.unique(idxs):
        members = torch.where(idxs == category)[0]
        keep_mask[members[op(boxes[members], scores[members], threshold)]] = True
    kept = torch.where(keep_mask)[0]
    return kept[scores[kept].sort(descending=True, stable=True).indices]
