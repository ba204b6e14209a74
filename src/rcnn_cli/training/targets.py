"""Matching proposals to ground truth and box-regression targets (Fast R-CNN §2.3).

Shapes: P proposals (candidates) of one image, G ground-truth boxes, K object classes.
Targets ``v = (tx, ty, tw, th)`` use the R-CNN parametrisation (:class:`rcnn_cli.boxes.BoxCoder`) and are
normalized to zero mean and unit variance before training — per class from the training set
(``empirical``), or with the released config's fixed 0 / (0.1, 0.1, 0.2, 0.2) (``fixed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rcnn_cli.boxes import BoxCoder, box_iou

#: Raw (unnormalized) encoding: means 0, stds 1.
RAW_CODER = BoxCoder(means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0))
FIXED_STDS = (0.1, 0.1, 0.2, 0.2)


@dataclass(frozen=True)
class Matches:
    """For each of P candidates: the best IoU with any gt box, that box's index, and its class.

    ``max_iou`` float32 [P] (0 when G = 0), ``gt_index`` int64 [P] (0 when G = 0), ``gt_label`` int64 [P].
    """

    max_iou: Tensor
    gt_index: Tensor
    gt_label: Tensor


def match_proposals(proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> Matches:
    """Match proposals Tensor[P, 4] to gt Tensor[G, 4] (labels Tensor[G]) by highest IoU."""
    num = proposals.shape[0]
    if gt_boxes.numel() == 0 or num == 0:
        zeros = torch.zeros(num, dtype=torch.int64)
        return Matches(torch.zeros(num), zeros, zeros.clone())
    iou = box_iou(proposals, gt_boxes)
    max_iou, gt_index = iou.max(dim=1)
    return Matches(max_iou, gt_index, gt_labels[gt_index])


def encode_targets(rois: Tensor, gt_boxes: Tensor) -> Tensor:
    """Raw targets v Tensor[R, 4] moving rois Tensor[R, 4] onto their matched gt Tensor[R, 4]."""
    if rois.shape[0] == 0:
        return rois.new_zeros((0, 4))
    return RAW_CODER.encode(rois, gt_boxes)


@dataclass(frozen=True)
class TargetNormalization:
    """Per-class means/stds, Tensor[K+1, 4] each (row 0, background, unused): v_norm = (v - mean) / std."""

    means: Tensor
    stds: Tensor

    def normalize(self, targets: Tensor, labels: Tensor) -> Tensor:
        """targets Tensor[R, 4], labels Tensor[R] -> normalized Tensor[R, 4] (by each RoI's class)."""
        return (targets - self.means[labels]) / self.stds[labels]

    @staticmethod
    def fixed(num_classes: int, stds: tuple[float, ...] = FIXED_STDS) -> TargetNormalization:
        means = torch.zeros(num_classes + 1, 4)
        return TargetNormalization(means, torch.tensor(stds, dtype=torch.float32).expand(num_classes + 1, 4))

    @staticmethod
    def empirical(
        targets: Tensor, labels: Tensor, num_classes: int, eps: float = 1e-6
    ) -> TargetNormalization:
        """Means/stds of raw targets Tensor[F, 4] of foreground candidates (labels Tensor[F] in 1..K).

        As the original implementation, statistics come from every candidate with IoU ≥ fg threshold
        in the training set. A class with no sample keeps mean 0 and the fixed std.
        """
        means = torch.zeros(num_classes + 1, 4, dtype=torch.float64)
        stds = torch.tensor(FIXED_STDS, dtype=torch.float64).repeat(num_classes + 1, 1)
        for k in range(1, num_classes + 1):
            t = targets[labels == k].double()
            if t.shape[0] >= 2:
                means[k] = t.mean(0)
                stds[k] = t.std(0, unbiased=False).clamp(min=eps)
        return TargetNormalization(means.float(), stds.float())
