"""rcnn_cli.ops.pool_geometry states the cells the kernels pool: taking the maximum over its bins in plain
PyTorch gives roi_pool's and spp_pool's outputs exactly, the kernel's argmax lies in its bin, and
RoIAlign's sample points average to the kernel's output on a map that is linear in x and y."""

from __future__ import annotations

import pytest
import torch
from ops_reference import FLT_LOWEST, random_rois

from rcnn_cli.ops import roi_align, roi_pool, roi_pool_with_argmax, spp_pool
from rcnn_cli.ops.pool_geometry import quantize, roi_align_samples, roi_pool_bins, roi_pool_window

SCALE = 1 / 4  # a 12×16 map of a 48×64 image


def _pool_by_geometry(
    x: torch.Tensor, rois: torch.Tensor, size: tuple[int, int], scale: float
) -> torch.Tensor:
    """Tensor[K, C, ph, pw]: the maximum over each bin that roi_pool_bins names, 0 for an empty one."""
    _, channels, height, width = x.shape
    out = x.new_zeros((rois.shape[0], channels, *size))
    for k, roi in enumerate(rois):
        bins = roi_pool_bins(roi[1:].tolist(), size, scale, (height, width), dtype=x.dtype)
        for i in range(size[0]):
            for j in range(size[1]):
                h0, h1, w0, w1 = bins.cells(i, j)
                if h1 > h0 and w1 > w0:
                    cells = x[int(roi[0]), :, h0:h1, w0:w1].reshape(channels, -1)
                    out[k, :, i, j] = cells.max(dim=1).values.clamp(min=FLT_LOWEST)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size", [(7, 7), (2, 2), (3, 5), (6, 6), (1, 1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bins_reproduce_roi_pool(dtype: torch.dtype, size: tuple[int, int], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 12, 16, generator=g, dtype=dtype)
    rois = random_rois(40, 2, 48, 64, g, dtype=dtype)
    expected = roi_pool(x, rois, size, SCALE)
    torch.testing.assert_close(_pool_by_geometry(x, rois, size, SCALE), expected, rtol=0, atol=0)


def test_halves_round_away_from_zero_in_float32() -> None:
    """The cases that tell C's round from Python's (halves to even) and float32 from float64."""
    assert quantize(2.0, 0.25) == 1 and quantize(6.0, 0.25) == 2  # 0.5 -> 1, 1.5 -> 2
    assert quantize(10.0, 0.25) == 3 and quantize(-2.0, 0.25) == -1  # 2.5 -> 3, -0.5 -> -1
    assert quantize(0.49999997, 1.0) == 0  # floor(v + 0.5) in float32 would give 1
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 1, 1] = 1.0  # only a RoI that starts at cell 1 (0.5 rounded up) holds the one
    out = roi_pool(x, torch.tensor([[0.0, 2.0, 2.0, 4.0, 4.0]]), 1, 0.25)
    assert roi_pool_window((2.0, 2.0, 4.0, 4.0), 0.25).start_w == 1 and out.item() == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_the_bins_reproduce_every_spp_level(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 12, 16, generator=g)
    rois = random_rois(30, 2, 48, 64, g)
    levels = (6, 3, 2, 1)
    expected = spp_pool(x, rois, levels, SCALE)
    got = torch.cat([_pool_by_geometry(x, rois, (lv, lv), SCALE).flatten(1) for lv in levels], dim=1)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_the_kernels_argmax_lies_in_its_bin_and_holds_the_maximum() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 12, 16, generator=g)
    rois = random_rois(25, 2, 48, 64, g)
    values, argmax = roi_pool_with_argmax(x, rois, 7, SCALE)
    torch.testing.assert_close(values, roi_pool(x, rois, 7, SCALE), rtol=0, atol=0)
    for k, roi in enumerate(rois):
        bins = roi_pool_bins(roi[1:].tolist(), 7, SCALE, (12, 16))
        empty = bins.empty()
        for i in range(7):
            for j in range(7):
                index = argmax[k, :, i, j]
                if empty[i, j]:
                    assert (index == -1).all()
                    continue
                h0, h1, w0, w1 = bins.cells(i, j)
                rows, cols = index // 16, index % 16
                assert ((rows >= h0) & (rows < h1) & (cols >= w0) & (cols < w1)).all()
                picked = x[int(roi[0])].reshape(3, -1).gather(1, index.long()[:, None]).flatten()
                torch.testing.assert_close(picked, values[k, :, i, j], rtol=0, atol=0)


def test_a_2x5_map_in_2x2_bins() -> None:
    """The question of the pooling picture: columns 0-2 and 2-4 (column 2 in both), one row each."""
    bins = roi_pool_bins((0.0, 0.0, 4.0, 1.0), 2, 1.0, (2, 5))
    assert bins.rows.tolist() == [[0, 1], [1, 2]]
    assert bins.cols.tolist() == [[0, 3], [2, 5]]
    x = torch.arange(10.0).reshape(1, 1, 2, 5)
    pooled = roi_pool(x, torch.tensor([[0.0, 0.0, 0.0, 4.0, 1.0]]), 2, 1.0)
    assert pooled.tolist() == [[[[2.0, 4.0], [7.0, 9.0]]]]


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [2, -1])
def test_roi_align_samples_average_to_the_kernel(aligned: bool, sampling_ratio: int) -> None:
    """On the map f(y, x) = x (and = y), bilinear interpolation is exact, so each bin's output is the
    mean of its sample columns (rows), clamped as the kernel clamps points to the map."""
    height, width = 12, 16
    ys, xs = torch.meshgrid(torch.arange(height).double(), torch.arange(width).double(), indexing="ij")
    x = torch.stack([xs, ys])[None]  # Tensor[1, 2, H, W]: channel 0 is x, channel 1 is y
    boxes = [(4.0, 8.0, 40.0, 30.0), (10.5, 3.25, 22.0, 44.0), (0.0, 0.0, 63.0, 47.0)]
    for box in boxes:
        rois = torch.tensor([[0.0, *box]], dtype=torch.float64)
        out = roi_align(x, rois, 7, SCALE, sampling_ratio, aligned)
        samples = roi_align_samples(box, 7, SCALE, sampling_ratio, aligned, (height, width), torch.float64)
        col_means = samples.xs.clamp(0, width - 1).mean(dim=1)  # Tensor[pw]
        row_means = samples.ys.clamp(0, height - 1).mean(dim=1)  # Tensor[ph]
        torch.testing.assert_close(out[0, 0], col_means[None, :].expand(7, 7), rtol=0, atol=1e-9)
        torch.testing.assert_close(out[0, 1], row_means[:, None].expand(7, 7), rtol=0, atol=1e-9)
