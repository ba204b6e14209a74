"""spp_pool: the SPPnet pyramid equals roi_pool per level, in one call, with gradients."""

from __future__ import annotations

import pytest
import torch
from ops_reference import random_rois
from ops_reference import spp_pool as reference_spp_pool

from rcnn_cli.ops import SPP_LEVELS, SPPPool, roi_pool, spp_pool

SCALE = 1 / 4


def _inputs(dtype=torch.float32, seed=1, num_rois=16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 12, 16, generator=g, dtype=dtype)
    return x, random_rois(num_rois, 2, 48, 64, g, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference(dtype):
    x, rois = _inputs(dtype)
    got = spp_pool(x, rois, SPP_LEVELS, SCALE)
    assert got.shape == (rois.shape[0], 4 * 50)
    torch.testing.assert_close(got, reference_spp_pool(x, rois, SPP_LEVELS, SCALE), rtol=0, atol=0)


def test_layout_is_roi_pool_per_level_concatenated():
    x, rois = _inputs()
    levels = (4, 1, 2)
    expected = torch.cat([roi_pool(x, rois, level, SCALE).flatten(1) for level in levels], dim=1)
    assert torch.equal(spp_pool(x, rois, levels, SCALE), expected)


def test_single_level_equals_roi_pool():
    x, rois = _inputs()
    assert torch.equal(spp_pool(x, rois, (7,), SCALE), roi_pool(x, rois, 7, SCALE).flatten(1))


def test_channels_last_and_list_rois():
    x, rois = _inputs()
    expected = spp_pool(x, rois, SPP_LEVELS, SCALE)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(spp_pool(channels_last, rois, SPP_LEVELS, SCALE), expected)
    order = torch.argsort(rois[:, 0], stable=True)
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    assert torch.equal(spp_pool(x, boxes, SPP_LEVELS, SCALE), expected[order])


def test_gradcheck_float64():
    x, rois = _inputs(torch.float64, num_rois=5)
    x = x[:, :2, :8, :9].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: spp_pool(t, rois, (3, 2, 1), 1 / 5), (x,), fast_mode=True)


def test_gradient_matches_reference_autograd():
    x, rois = _inputs(torch.float64)
    x.requires_grad_()
    weight = torch.randn(rois.shape[0], 4 * 50, dtype=torch.float64)
    (grad,) = torch.autograd.grad((spp_pool(x, rois, SPP_LEVELS, SCALE) * weight).sum(), x)
    (expected,) = torch.autograd.grad((reference_spp_pool(x, rois, SPP_LEVELS, SCALE) * weight).sum(), x)
    torch.testing.assert_close(grad, expected)


def test_empty_rois_and_module():
    x, rois = _inputs()
    assert spp_pool(x, torch.zeros(0, 5), SPP_LEVELS, SCALE).shape == (0, 200)
    module = SPPPool(spatial_scale=SCALE)
    assert module.bins_per_channel == 50
    assert torch.equal(module(x, rois), spp_pool(x, rois, SPP_LEVELS, SCALE))


def test_opcheck():
    x, rois = _inputs(num_rois=4)
    x.requires_grad_()
    torch.library.opcheck(torch.ops.rcnn_cli.spp_pool.default, (x, rois, SCALE, [3, 2, 1]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [(6, 3, 2, 1), (8, 4, 2, 1), (1, 4, 3, 2), (5, 5)])
def test_nested_levels_with_ties_equal_roi_pool_per_level(dtype, levels):
    # Coarse levels nested in finer ones (3 in 6, 1 in 2, 2 in 4 in 8) are combined from
    # the finer maxima; with a few distinct values (many ties) the argmax, and so the
    # gradient, must still be the first maximum of a scan, as roi_pool's.
    g = torch.Generator().manual_seed(7)
    x = torch.randint(0, 3, (2, 70, 13, 17), generator=g).to(dtype)  # 70 channels: a partial block
    x[0, 5] = float("-inf")
    rois = random_rois(40, 2, 52, 68, g, dtype=dtype)
    x.requires_grad_()
    weight = torch.randn(40, 70 * sum(lv * lv for lv in levels), generator=g, dtype=dtype)
    out = spp_pool(x, rois, levels, SCALE)
    expected = torch.cat([roi_pool(x, rois, lv, SCALE).flatten(1) for lv in levels], dim=1)
    assert torch.equal(out, expected)
    _, argmax = torch.ops.rcnn_cli.spp_pool(x, rois, SCALE, list(levels))
    roi_pool_argmax = [torch.ops.rcnn_cli.roi_pool(x, rois, SCALE, lv, lv)[1].flatten(1) for lv in levels]
    assert torch.equal(argmax, torch.cat(roi_pool_argmax, dim=1))
    (grad,) = torch.autograd.grad((out * weight).sum(), x)
    (expected_grad,) = torch.autograd.grad((expected * weight).sum(), x)
    torch.testing.assert_close(grad, expected_grad)  # the same terms, summed in another order
