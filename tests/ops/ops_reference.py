"""Readable pure-PyTorch references for the compiled ops (slow, for tests only).

Each function follows the paper's / torchvision's definition line by line, with
plain loops over RoIs and bins and tensor operations over channels only. They are
differentiable with autograd, so they also serve as gradient references.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

FLT_LOWEST = float(np.finfo(np.float32).min)  # torchvision starts every max at -FLT_MAX


def _np_dtype(dtype: torch.dtype) -> type:
    return np.float32 if dtype == torch.float32 else np.float64


def round_half_away(value: float) -> int:
    """C's round(): halves go away from zero (Python's round() goes to even)."""
    magnitude = abs(value)
    whole = math.floor(magnitude)
    rounded = whole + (1 if magnitude - whole >= 0.5 else 0)
    return int(math.copysign(rounded, value))


def max_pool_bins(roi: Tensor, grid: tuple[int, int], spatial_scale: float, height: int, width: int):
    """Fast R-CNN bins of one RoI: list of (ph, pw, hstart, hend, wstart, wend).

    The arithmetic runs in the RoI's dtype (numpy scalars) so that float32 results
    match the kernel bit for bit, as torchvision's do.
    """
    t = _np_dtype(roi.dtype)
    scale = t(spatial_scale)
    x1, y1, x2, y2 = (t(v) for v in roi[1:].tolist())
    start_w, start_h = round_half_away(float(x1 * scale)), round_half_away(float(y1 * scale))
    end_w, end_h = round_half_away(float(x2 * scale)), round_half_away(float(y2 * scale))
    roi_width = max(end_w - start_w + 1, 1)
    roi_height = max(end_h - start_h + 1, 1)
    pooled_height, pooled_width = grid
    bin_h = t(roi_height) / t(pooled_height)
    bin_w = t(roi_width) / t(pooled_width)
    bins = []
    for ph in range(pooled_height):
        hstart = min(max(math.floor(t(ph) * bin_h) + start_h, 0), height)
        hend = min(max(math.ceil(t(ph + 1) * bin_h) + start_h, 0), height)
        for pw in range(pooled_width):
            wstart = min(max(math.floor(t(pw) * bin_w) + start_w, 0), width)
            wend = min(max(math.ceil(t(pw + 1) * bin_w) + start_w, 0), width)
            bins.append((ph, pw, hstart, hend, wstart, wend))
    return bins


def roi_pool(input: Tensor, rois: Tensor, output_size: tuple[int, int], spatial_scale: float) -> Tensor:
    """Tensor[N, C, H, W], Tensor[K, 5] -> Tensor[K, C, ph, pw]; an empty bin gives 0."""
    _, channels, height, width = input.shape
    out = input.new_zeros((rois.shape[0], channels, *output_size))
    for k, roi in enumerate(rois):
        n = int(roi[0])
        for ph, pw, hs, he, ws, we in max_pool_bins(roi, output_size, spatial_scale, height, width):
            if he <= hs or we <= ws:
                continue  # empty bin: stays 0
            region = input[n, :, hs:he, ws:we].reshape(channels, -1)
            best = region.max(dim=1).values
            out[k, :, ph, pw] = torch.clamp(best, min=FLT_LOWEST)
    return out


def spp_pool(input: Tensor, rois: Tensor, levels: tuple[int, ...], spatial_scale: float) -> Tensor:
    """SPPnet: per level an l×l roi_pool, flattened channel-major, concatenated over levels."""
    return torch.cat([roi_pool(input, rois, (lv, lv), spatial_scale).flatten(1) for lv in levels], dim=1)


def bilinear(plane: Tensor, y: float, x: float) -> Tensor:
    """Bilinear value of plane[C, H, W] at (y, x), torchvision's border rules."""
    _, height, width = plane.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return plane.new_zeros(plane.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * plane[:, y_low, x_low]
        + hy * lx * plane[:, y_low, x_high]
        + ly * hx * plane[:, y_high, x_low]
        + ly * lx * plane[:, y_high, x_high]
    )


def roi_align(
    input: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """Tensor[N, C, H, W], Tensor[K, 5] -> Tensor[K, C, ph, pw] (Mask R-CNN RoIAlign)."""
    _, channels, _, _ = input.shape
    pooled_height, pooled_width = output_size
    out = input.new_zeros((rois.shape[0], channels, pooled_height, pooled_width))
    offset = 0.5 if aligned else 0.0
    for k, roi in enumerate(rois.tolist()):
        n = int(roi[0])
        x1, y1, x2, y2 = (v * spatial_scale - offset for v in roi[1:])
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / pooled_height, roi_w / pooled_width
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / pooled_height)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pooled_width)
        count = max(grid_h * grid_w, 1)
        for ph in range(pooled_height):
            for pw in range(pooled_width):
                total = input.new_zeros(channels)
                for iy in range(grid_h):
                    y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        total = total + bilinear(input[n], y, x)
                out[k, :, ph, pw] = total / count
    return out


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS: by decreasing score (stable), drop boxes with IoU > threshold to a kept one."""
    order = torch.sort(scores, descending=True, stable=True).indices.tolist()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    suppressed = set()
    keep = []
    for pos, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[pos + 1 :]:
            lt = torch.maximum(boxes[i, :2], boxes[j, :2])
            rb = torch.minimum(boxes[i, 2:], boxes[j, 2:])
            wh = (rb - lt).clamp(min=0)
            inter = wh[0] * wh[1]
            iou = inter / (area[i] + area[j] - inter)
            if iou.item() > iou_threshold:
                suppressed.add(j)
    return torch.tensor(keep, dtype=torch.int64)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS per category; kept indices by decreasing score, ties by index."""
    keep = []
    for category in idxs.unique().tolist():
        members = torch.where(idxs == category)[0]
        keep += members[nms(boxes[members], scores[members], iou_threshold)].tolist()
    keep = torch.tensor(sorted(keep), dtype=torch.int64)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def random_rois(
    num: int,
    batch_size: int,
    image_height: float,
    image_width: float,
    generator: torch.Generator,
    *,
    dtype=torch.float32,
) -> torch.Tensor:
    """Tensor[num, 5]: RoIs mostly inside the image, some partly or wholly outside, some tiny or inverted."""
    g = generator
    x1 = torch.rand(num, generator=g, dtype=torch.float64) * image_width * 1.2 - 0.1 * image_width
    y1 = torch.rand(num, generator=g, dtype=torch.float64) * image_height * 1.2 - 0.1 * image_height
    w = torch.rand(num, generator=g, dtype=torch.float64) * image_width * 0.8
    h = torch.rand(num, generator=g, dtype=torch.float64) * image_height * 0.8
    batch = torch.randint(batch_size, (num,), generator=g).double()
    rois = torch.stack([batch, x1, y1, x1 + w, y1 + h], dim=1)
    if num >= 4:
        rois[0, 1:] = torch.tensor([5.0, 5.0, 5.0, 5.0])  # zero-size
        rois[1, 1:] = torch.tensor([30.0, 20.0, 10.0, 5.0])  # inverted
        rois[2, 1:] = torch.tensor([-500.0, -500.0, -100.0, -100.0])  # wholly outside
        rois[3, 1:] = torch.tensor([-20.0, -20.0, image_width + 50, image_height + 50])  # covers beyond
    return rois.to(dtype)
