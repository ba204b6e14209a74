"""A slow, readable pure-PyTorch roi_pool (torchvision semantics) used only while rcnn_cli.ops has none.

Installed by ``install_if_missing()`` from the conftest files of tests/models and tests/training, so
these tests can run before the compiled ops land; once ``rcnn_cli.ops.RoIPool`` exists it is used instead.
"""

from __future__ import annotations

import math
import sys
import types

import torch
from torch import Tensor, nn


def roi_pool(input: Tensor, rois: Tensor, output_size, spatial_scale: float = 1.0) -> Tensor:
    ph_n, pw_n = (output_size, output_size) if isinstance(output_size, int) else output_size
    _, channels, height, width = input.shape
    out = []
    hs = torch.arange(height, device=input.device)
    ws = torch.arange(width, device=input.device)
    for roi in rois.tolist():
        b = int(roi[0])
        x1, y1, x2, y2 = (round(v * spatial_scale) for v in roi[1:])
        roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        bin_w, bin_h = roi_w / pw_n, roi_h / ph_n
        mask_w = torch.zeros(pw_n, width, dtype=torch.bool)
        mask_h = torch.zeros(ph_n, height, dtype=torch.bool)
        for p in range(pw_n):
            lo = min(max(math.floor(p * bin_w) + x1, 0), width)
            hi = min(max(math.ceil((p + 1) * bin_w) + x1, 0), width)
            mask_w[p] = (ws >= lo) & (ws < hi)
        for p in range(ph_n):
            lo = min(max(math.floor(p * bin_h) + y1, 0), height)
            hi = min(max(math.ceil((p + 1) * bin_h) + y1, 0), height)
            mask_h[p] = (hs >= lo) & (hs < hi)
        x = input[b]  # [C, H, W]
        neg = torch.finfo(x.dtype).min
        xw = torch.where(mask_w[None, None], x[:, :, None, :], neg).amax(dim=3)  # [C, H, PW]
        xhw = torch.where(mask_h[None, :, :, None], xw[:, None, :, :], neg).amax(dim=2)  # [C, PH, PW]
        empty = ~(mask_h.any(1)[:, None] & mask_w.any(1)[None, :])
        out.append(torch.where(empty[None], torch.zeros((), dtype=x.dtype), xhw))
    if not out:
        return input.new_zeros((0, channels, ph_n, pw_n))
    return torch.stack(out)


class RoIPool(nn.Module):
    def __init__(self, output_size, spatial_scale: float) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)


class SPPPool(nn.Module):
    def __init__(self, levels, spatial_scale: float) -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        parts = [roi_pool(input, rois, n, self.spatial_scale).flatten(1) for n in self.levels]
        return torch.cat(parts, dim=1)


def install_if_missing() -> None:
    try:
        from rcnn_cli import ops

        if hasattr(ops, "RoIPool") and hasattr(ops, "SPPPool"):
            return
    except ImportError:
        ops = types.ModuleType("rcnn_cli.ops")
        sys.modules["rcnn_cli.ops"] = ops
        import rcnn_cli

        rcnn_cli.ops = ops  # type: ignore[attr-defined]
    for name in ("roi_pool", "RoIPool", "SPPPool"):
        if not hasattr(ops, name):
            setattr(ops, name, globals()[name])
