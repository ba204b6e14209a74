"""Axis-aligned boxes: area, IoU, clipping, flipping, the R-CNN box parametrisation and its smooth L1 loss.

Every box is ``[x1, y1, x2, y2]`` in continuous pixel coordinates of the original image
(docs/ARCHITECTURE.md, "Conventions"), so a box's width is ``x2 - x1`` with no ``+ 1``. All functions are
vectorized over a leading dimension and keep the input's dtype and device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

# exp() of a larger log-ratio would make a box over 1000x its proposal: clamp, as
# Fast R-CNN's successors do, so one wild prediction cannot overflow to inf.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def box_area(boxes: Tensor) -> Tensor:
    """Area of boxes ``Tensor[N, 4]`` as ``Tensor[N]``; degenerate boxes have area <= 0."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise intersection over union.

    Args:
        boxes1: Tensor[N, 4]
        boxes2: Tensor[M, 4]
    Returns:
        Tensor[N, M]; 0 where the union is empty (two zero-area boxes).
    """
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return torch.where(
        union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), torch.zeros_like(inter)
    )


def clip_boxes(boxes: Tensor, height: float, width: float) -> Tensor:
    """Clip ``Tensor[..., 4k]`` boxes to the image ``[0, width] x [0, height]``."""
    clipped = boxes.clone()
    clipped[..., 0::2] = boxes[..., 0::2].clamp(0, width)
    clipped[..., 1::2] = boxes[..., 1::2].clamp(0, height)
    return clipped


def flip_boxes(boxes: Tensor, width: float) -> Tensor:
    """Mirror ``Tensor[N, 4]`` boxes horizontally in an image of ``width`` pixels."""
    flipped = boxes.clone()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return flipped


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices (``Tensor[K]`` int64) of boxes whose width and height are both >= ``min_size``."""
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((widths >= min_size) & (heights >= min_size)).flatten()


@dataclass(frozen=True)
class BoxCoder:
    """The R-CNN box regression parametrisation (R-CNN appendix C, Fast R-CNN §2.3).

    For a proposal P (centre Px, Py, size Pw, Ph) and its ground-truth box G:
    ``t = ((Gx - Px) / Pw, (Gy - Py) / Ph, log(Gw / Pw), log(Gh / Ph))``,
    then normalized as ``(t - means) / stds`` so the regression targets have
    roughly unit variance (Fast R-CNN's released config uses means 0 and
    stds (0.1, 0.1, 0.2, 0.2)).
    """

    means: Sequence[float] = (0.0, 0.0, 0.0, 0.0)
    stds: Sequence[float] = (0.1, 0.1, 0.2, 0.2)

    def encode(self, proposals: Tensor, gt_boxes: Tensor) -> Tensor:
        """Normalized targets ``t`` ``Tensor[N, 4]`` that move ``proposals[N, 4]`` onto ``gt_boxes[N, 4]``.

        Proposals must have positive width and height.
        """
        pw, ph, px, py = _size_and_centre(proposals)
        gw, gh, gx, gy = _size_and_centre(gt_boxes)
        targets = torch.stack(((gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)), dim=1)
        means = targets.new_tensor(self.means)
        stds = targets.new_tensor(self.stds)
        return (targets - means) / stds

    def decode(self, deltas: Tensor, proposals: Tensor) -> Tensor:
        """Apply normalized deltas ``Tensor[N, 4k]`` (k boxes per proposal, e.g. one per class)
        to ``proposals[N, 4]``; returns boxes ``Tensor[N, 4k]``."""
        # unflatten/flatten, not reshape(N, -1, 4) and back: -1 is ambiguous when N = 0.
        d = deltas.unflatten(1, (-1, 4))
        d = d * d.new_tensor(self.stds) + d.new_tensor(self.means)
        pw, ph, px, py = (v[:, None] for v in _size_and_centre(proposals.to(deltas.dtype)))
        cx = d[..., 0] * pw + px
        cy = d[..., 1] * ph + py
        w = torch.exp(d[..., 2].clamp(max=BBOX_XFORM_CLIP)) * pw
        h = torch.exp(d[..., 3].clamp(max=BBOX_XFORM_CLIP)) * ph
        boxes = torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=2)
        return boxes.flatten(1)


def smooth_l1(x: Tensor) -> Tensor:
    """Fast R-CNN eq. 3: 0.5 x² if |x| < 1, else |x| − 0.5 (elementwise); less sensitive to outliers than L2.

    The loss of box regression, here beside the box coder so that every model package (Fast R-CNN's
    head in ``models/``, the region proposal network in ``rpn/``) shares one copy.
    """
    ax = x.abs()
    return torch.where(ax < 1, 0.5 * x * x, ax - 0.5)


def _size_and_centre(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return widths, heights, boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights
