"""Where the RoI poolings look on the feature map, in Python: the bins of RoI max pooling (Fast R-CNN,
Girshick 2015, §2.1; every level of SPPnet's pyramid, He et al. 2014, §2.3) and the sample points of
RoIAlign (Mask R-CNN, He et al. 2017, §3).

These are the kernels' formulas (``ops/roi_pool_math.h``, ``ops/roi_align_math.h``) written once more,
in the kernels' arithmetic (float32 unless told otherwise, as for a float32 feature map), so that a
picture drawn from them shows the cells the kernels really pool; ``tests/ops/test_pool_geometry.py``
checks them against the kernels' outputs. RoI max pooling:

- corners ``x1' = round(x1 · spatial_scale)``, rounded half away from zero (the quantization of the RoI);
- size ``w' = max(x2' − x1' + 1, 1)`` cells (the rounded corners are both inside the window);
- bin j of ``pw`` covers columns ``[floor(j · w'/pw), ceil((j + 1) · w'/pw))`` shifted by x1', clipped to
  the map: neighbouring bins may share a column, and bins may differ in size by a cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

#: The kernels clamp a rounded corner to ±2^40 cells so that extreme scales stay defined.
_CORNER_LIMIT = float(1 << 40)


def _as(value: float, dtype: torch.dtype) -> Tensor:
    """A 0-d tensor of ``dtype``: the C++ ``static_cast<T>``."""
    return torch.tensor(value, dtype=dtype)


def quantize(coordinate: float, spatial_scale: float, dtype: torch.dtype = torch.float32) -> int:
    """The feature-map cell of an image coordinate, as RoI pooling rounds it: ``round(c · s)`` in
    ``dtype``, halves away from zero (C's ``round``, not Python's, which rounds halves to even)."""
    product = float(_as(coordinate, dtype) * _as(spatial_scale, dtype))  # the product in float32, exactly
    if math.isnan(product):
        return int(-_CORNER_LIMIT)
    rounded = math.copysign(math.floor(abs(product) + 0.5), product)  # exact: a float32 fits a float64
    return int(min(max(rounded, -_CORNER_LIMIT), _CORNER_LIMIT))


@dataclass(frozen=True)
class PoolWindow:
    """A RoI rounded onto the feature map: its first row and column and its size, in whole cells."""

    start_h: int
    start_w: int
    height: int
    width: int


def roi_pool_window(
    box: Sequence[float], spatial_scale: float, dtype: torch.dtype = torch.float32
) -> PoolWindow:
    """``box`` (x1, y1, x2, y2) in image pixels -> the quantized window RoI pooling splits into bins."""
    x1, y1, x2, y2 = (float(v) for v in box)
    start_w, start_h = quantize(x1, spatial_scale, dtype), quantize(y1, spatial_scale, dtype)
    width = max(quantize(x2, spatial_scale, dtype) - start_w + 1, 1)  # a malformed RoI becomes 1×1
    height = max(quantize(y2, spatial_scale, dtype) - start_h + 1, 1)
    return PoolWindow(start_h, start_w, height, width)


def bin_edges(bins: int, start: int, size: int, limit: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Tensor[bins, 2] int64: ``[begin, end)`` of each of ``bins`` bins along one side of a window that
    starts at cell ``start`` and is ``size`` cells long, clipped to ``[0, limit]`` (the map's side)."""
    bin_size = _as(size, dtype) / _as(bins, dtype)
    index = torch.arange(bins + 1).to(dtype)
    first = torch.floor(index[:-1] * bin_size).to(torch.int64)
    last = torch.ceil(index[1:] * bin_size).to(torch.int64)
    return (torch.stack([first, last], dim=1) + start).clamp(0, limit)


@dataclass(frozen=True)
class PoolBins:
    """The bins of one RoI: ``rows`` Tensor[ph, 2] and ``cols`` Tensor[pw, 2], each ``[begin, end)`` in
    cells of the map. Bin (i, j) is ``rows[i] × cols[j]``; it is empty (outputs 0) when either is."""

    window: PoolWindow
    rows: Tensor
    cols: Tensor

    def cells(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(hstart, hend, wstart, wend) of bin (i, j)."""
        (h0, h1), (w0, w1) = self.rows[i].tolist(), self.cols[j].tolist()
        return h0, h1, w0, w1

    def empty(self) -> Tensor:
        """Tensor[ph, pw] bool: the bins that hold no cell (outside the map)."""
        rows_empty = self.rows[:, 1] <= self.rows[:, 0]
        cols_empty = self.cols[:, 1] <= self.cols[:, 0]
        return rows_empty[:, None] | cols_empty[None, :]


def roi_pool_bins(
    box: Sequence[float],
    output_size: int | tuple[int, int],
    spatial_scale: float,
    map_size: tuple[int, int],
    dtype: torch.dtype = torch.float32,
) -> PoolBins:
    """The (pooled_height × pooled_width) bins of RoI max pooling over ``box`` (image pixels) on a map of
    ``map_size`` (H, W); ``output_size`` l gives SPPnet's l×l level (the same rule)."""
    pooled_h, pooled_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    window = roi_pool_window(box, spatial_scale, dtype)
    height, width = map_size
    rows = bin_edges(pooled_h, window.start_h, window.height, height, dtype)
    cols = bin_edges(pooled_w, window.start_w, window.width, width, dtype)
    return PoolBins(window, rows, cols)


@dataclass(frozen=True)
class AlignSamples:
    """RoIAlign's bins and sample points on the map, in continuous cell coordinates (cell (i, j) spans
    ``[j, j + 1) × [i, i + 1)``, the kernel's bilinear samples read value (i, j) at point (i, j)).

    ``start`` (y, x) and ``bin_size`` (h, w) place bin (i, j) at ``start + (i, j) · bin_size``; ``ys``
    Tensor[ph, grid_h] and ``xs`` Tensor[pw, grid_w] are the sample rows of each bin row and the sample
    columns of each bin column: bin (i, j) averages the grid_h × grid_w points ``ys[i] × xs[j]``.
    """

    start: tuple[float, float]
    bin_size: tuple[float, float]
    ys: Tensor
    xs: Tensor


def roi_align_samples(
    box: Sequence[float],
    output_size: int | tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int = -1,
    aligned: bool = False,
    map_size: tuple[int, int] | None = None,
    dtype: torch.dtype = torch.float32,
) -> AlignSamples:
    """RoIAlign's sample points for ``box`` (image pixels): no rounding anywhere; ``sampling_ratio`` > 0
    points per bin side, else ceil(bin size) (capped by ``map_size`` as in the kernel). ``aligned``
    shifts the RoI by half a cell so that samples sit at cell centres."""
    pooled_h, pooled_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    x1, y1, x2, y2 = (_as(float(v), dtype) for v in box)
    scale = _as(spatial_scale, dtype)
    offset = _as(0.5 if aligned else 0.0, dtype)
    start_w, start_h = x1 * scale - offset, y1 * scale - offset
    roi_w, roi_h = x2 * scale - offset - start_w, y2 * scale - offset - start_h
    if not aligned:  # the legacy (Detectron) rule: a malformed RoI becomes 1×1
        roi_w, roi_h = torch.clamp(roi_w, min=1.0), torch.clamp(roi_h, min=1.0)
    bin_h, bin_w = roi_h / _as(pooled_h, dtype), roi_w / _as(pooled_w, dtype)
    cap = float(2 * max(map_size) + 2) if map_size is not None else math.inf

    def grid(side: Tensor) -> int:
        if sampling_ratio > 0:
            return int(sampling_ratio)
        return max(int(min(float(torch.ceil(side)), cap)), 0)

    grid_h, grid_w = grid(bin_h), grid(bin_w)

    def points(start: Tensor, size: Tensor, bins: int, count: int) -> Tensor:
        index = torch.arange(bins).to(dtype)[:, None]
        within = (torch.arange(count).to(dtype)[None, :] + 0.5) * size / _as(count, dtype)
        return start + index * size + within  # the kernel's order of additions: (start + i·size) + within

    return AlignSamples(
        start=(float(start_h), float(start_w)),
        bin_size=(float(bin_h), float(bin_w)),
        ys=points(start_h, bin_h, pooled_h, grid_h),
        xs=points(start_w, bin_w, pooled_w, grid_w),
    )
