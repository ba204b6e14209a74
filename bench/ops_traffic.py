"""Minimum memory traffic of the RoI ops, against the machine's measured copy bandwidth.

A kernel can be no faster than the bytes it must move divided by the memory bandwidth, so
``bytes / time`` next to the bandwidth of a plain copy says how far a kernel is from that
limit. The byte counts are lower bounds: every input element read once, every output
element written once, no cache misses beyond that and no page faults (a freshly allocated
output of hundreds of MB also costs the kernel's page zeroing, which is not counted).

Used by bench/ops.py; the functions take tensor sizes, not tensors, so they cost nothing.
"""

from __future__ import annotations

import time

import torch


def copy_bandwidth(device: str = "cpu", megabytes: int = 256, repeat: int = 5) -> float:
    """Best bandwidth of ``dst.copy_(src)`` on two float32 tensors of ``megabytes`` MB, in bytes/s.

    Counted as read + write (2x the size). Both tensors are written once before timing, so no
    page fault is timed. Runs with the current ``torch.get_num_threads()``.
    """
    numel = megabytes * 2**20 // 4
    src = torch.ones(numel, device=device)
    dst = torch.zeros(numel, device=device)
    best = float("inf")
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        dst.copy_(src)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * numel * 4 / best


def max_pool_bytes(
    features: tuple[int, int, int, int], num_rois: int, bins: int, itemsize: int = 4, backward: bool = True
) -> int:
    """Bytes RoI max pooling must move: features [N, C, H, W], ``bins`` output bins per channel.

    Forward: read the features and the rois [K, 5], write output [K, C * bins] and (training)
    the int32 argmax of the same shape. Backward: read grad [K, C * bins] and the argmax, write
    grad_input [N, C, H, W]. ``backward=False``: the inference forward (no argmax).
    """
    n, c, h, w = features
    feature_bytes = n * c * h * w * itemsize
    pooled = num_rois * c * bins
    rois = num_rois * 5 * itemsize
    if not backward:
        return feature_bytes + rois + pooled * itemsize
    forward = feature_bytes + rois + pooled * (itemsize + 4)
    return forward + rois + pooled * (itemsize + 4) + feature_bytes


def roi_align_bytes(features: tuple[int, int, int, int], num_rois: int, bins: int, itemsize: int = 4) -> int:
    """Bytes RoIAlign forward + backward must move: read features, write output [K, C, bins];
    read grad [K, C, bins], write grad_input [N, C, H, W] (rois read twice)."""
    n, c, h, w = features
    feature_bytes = n * c * h * w * itemsize
    pooled = num_rois * c * bins * itemsize
    return 2 * (feature_bytes + pooled + num_rois * 5 * itemsize)


def nms_bytes(num_boxes: int, num_kept: int, itemsize: int = 4) -> int:
    """Bytes NMS must move: read boxes [B, 4] and scores [B], write the kept int64 indices."""
    return num_boxes * 5 * itemsize + num_kept * 8


def traffic_note(num_bytes: int, ms: float, bandwidth: float) -> str:
    """'X MB, Y GB/s = Z% of copy': the achieved traffic of a kernel that moved num_bytes in ms."""
    rate = num_bytes / (ms * 1e-3)
    return f"{num_bytes / 1e6:.3g} MB, {rate / 1e9:.3g} GB/s = {100 * rate / bandwidth:.2g}% of copy"
