"""The anchors' training labels (Faster R-CNN §3.1.2) and the sampled minibatch of anchors (§3.1.3).

An anchor is **positive** (1) if its IoU with some ground-truth box is ≥ 0.7, or if it is, for some gt
box, an anchor of that box's highest IoU (all tied anchors; never at IoU 0), so that every gt box has
a positive even when no anchor reaches 0.7. It is **negative** (0) if its IoU with every gt box is
< 0.3 and it is not positive; others are **ignored** (-1). In training, anchors that cross the image
border are ignored (§3.3, "cross-boundary anchors"). Then 256 anchors are sampled per image, at most
half of them positive, the rest negative; those left out become -1. Shapes: A anchors, G gt boxes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rcnn_cli.boxes import box_iou
from rcnn_cli.rpn.settings import AnchorTargetConfig

__all__ = ["AnchorTargetConfig", "anchor_targets"]


def _sample(labels: Tensor, config: AnchorTargetConfig, generator: torch.Generator | None) -> Tensor:
    """Keep at most batch_size·positive_fraction positives and fill up to batch_size with negatives."""
    out = labels.clone()
    positive = torch.where(labels == 1)[0]
    max_positive = int(config.batch_size * config.positive_fraction)
    if positive.numel() > max_positive:
        perm = torch.randperm(positive.numel(), generator=generator, device="cpu").to(labels.device)
        out[positive[perm[max_positive:]]] = -1
    kept_positive = min(positive.numel(), max_positive)
    negative = torch.where(labels == 0)[0]
    max_negative = config.batch_size - kept_positive
    if negative.numel() > max_negative:
        perm = torch.randperm(negative.numel(), generator=generator, device="cpu").to(labels.device)
        out[negative[perm[max_negative:]]] = -1
    return out


def anchor_targets(
    anchors: Tensor,
    gt_boxes: Tensor,
    image_size: tuple[int, int],
    config: AnchorTargetConfig | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Labels and matched gt boxes of one image's anchors.

    Args:
        anchors: ``Tensor[A, 4]`` xyxy image pixels (:func:`rcnn_cli.rpn.anchors.anchors`).
        gt_boxes: ``Tensor[G, 4]``, G may be 0.
        image_size: (height, width) of the (scaled) image.
        config: the thresholds and sampling; the paper's by default.
        generator: a CPU ``torch.Generator`` for the sampling, for determinism.

    Returns:
        labels ``Tensor[A]`` int64 in {1, 0, -1} (positive, negative, ignored or not sampled), and
        matched_gt ``Tensor[A, 4]``: each anchor's gt box of highest IoU (the anchor itself where G = 0),
        the regression target of the positives.
    """
    config = config or AnchorTargetConfig()
    num = anchors.shape[0]
    labels = torch.full((num,), -1, dtype=torch.int64, device=anchors.device)
    height, width = image_size
    if config.ignore_border:
        b = config.allowed_border
        inside = (
            (anchors[:, 0] >= -b)
            & (anchors[:, 1] >= -b)
            & (anchors[:, 2] <= width + b)
            & (anchors[:, 3] <= height + b)
        )
    else:
        inside = torch.ones(num, dtype=torch.bool, device=anchors.device)
    if gt_boxes.shape[0] == 0:
        labels[inside] = 0
        return _sample(labels, config, generator), anchors.clone()

    iou = box_iou(anchors, gt_boxes.to(anchors.dtype))  # Tensor[A, G]
    iou = torch.where(inside[:, None], iou, torch.full_like(iou, -1.0))  # border anchors never match
    best_iou, best_gt = iou.max(dim=1)
    labels[inside & (best_iou < config.negative_iou)] = 0
    # For each gt box, its anchors of highest IoU (all ties), unless that IoU is 0.
    per_gt_best = iou.max(dim=0).values  # Tensor[G]
    is_best = (iou == per_gt_best[None, :]) & (per_gt_best[None, :] > 0)
    labels[is_best.any(dim=1)] = 1
    labels[best_iou >= config.positive_iou] = 1
    return _sample(labels, config, generator), gt_boxes[best_gt].to(anchors.dtype)
