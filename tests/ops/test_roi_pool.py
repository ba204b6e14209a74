"""roi_pool against the pure-PyTorch reference, hand-computed cases, gradients and opcheck."""

from __future__ import annotations

import pytest
import torch
from ops_reference import random_rois
from ops_reference import roi_pool as reference_roi_pool

from rcnn_cli.ops import RoIPool, roi_pool

SCALE = 1 / 4  # feature map 12x16 of a 48x64 image


def _inputs(dtype=torch.float32, seed=0, num_rois=24):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 5, 12, 16, generator=g, dtype=dtype)
    rois = random_rois(num_rois, 2, 48, 64, g, dtype=dtype)
    return x, rois


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("output_size", [(7, 7), (3, 5), (1, 1)])
def test_matches_reference(dtype, output_size):
    x, rois = _inputs(dtype)
    expected = reference_roi_pool(x, rois, output_size, SCALE)
    got = roi_pool(x, rois, output_size, SCALE)
    assert got.dtype == dtype and got.shape == (rois.shape[0], 5, *output_size)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_hand_computed():
    # 1x1x4x4 map 0..15; RoI (0,0)-(3,3) in map pixels is the whole map: 4x4 pixels,
    # 2x2 bins of 2x2 pixels each; the max of each bin is its bottom-right pixel.
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = roi_pool(x, torch.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]]), 2, 1.0)
    assert out.tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    # A 3x3 RoI in 2x2 bins: edges floor(1.5) = 1 and ceil(1.5) = 2, so the bins are
    # rows/columns [0, 2) and [1, 3) and share the middle row and column.
    out = roi_pool(x, torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]]), 2, 1.0)
    assert out.tolist() == [[[[5.0, 6.0], [9.0, 10.0]]]]
    # Corners round half away from zero: 0.5 -> 1, so this RoI starts at pixel (1, 1).
    out = roi_pool(x, torch.tensor([[0.0, 0.5, 0.5, 1.0, 1.0]]), 1, 1.0)
    assert out.item() == 5.0


def test_list_of_boxes_equals_tensor_rois():
    x, rois = _inputs()
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    as_tensor = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(boxes)])
    torch.testing.assert_close(roi_pool(x, boxes, 7, SCALE), roi_pool(x, as_tensor, 7, SCALE), rtol=0, atol=0)


def test_non_contiguous_and_channels_last_inputs():
    x, rois = _inputs()
    expected = roi_pool(x, rois, 7, SCALE)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(roi_pool(channels_last, rois, 7, SCALE), expected, rtol=0, atol=0)
    wide = torch.zeros(2, 10, 12, 32)
    wide[:, ::2, :, ::2] = x
    strided = wide[:, ::2, :, ::2]
    assert not strided.is_contiguous()
    torch.testing.assert_close(roi_pool(strided, rois, 7, SCALE), expected, rtol=0, atol=0)
    padded_rois = torch.zeros(rois.shape[0], 7)
    padded_rois[:, 1:6] = rois
    torch.testing.assert_close(roi_pool(x, padded_rois[:, 1:6], 7, SCALE), expected, rtol=0, atol=0)


def test_out_of_map_and_degenerate_rois():
    x = torch.randn(1, 2, 6, 6)
    rois = torch.tensor(
        [
            [0, -100.0, -100.0, -50.0, -50.0],  # wholly outside: every bin empty -> 0
            [0, 3.0, 3.0, 3.0, 3.0],  # zero size: a 1x1 RoI at pixel (3, 3)
            [0, 4.0, 4.0, 1.0, 1.0],  # inverted: also forced to 1x1 at (4, 4)
            [0, -10.0, -10.0, 100.0, 100.0],  # covers the map
        ]
    )
    out = roi_pool(x, rois, 2, 1.0)
    assert torch.equal(out[0], torch.zeros(2, 2, 2))
    assert torch.equal(out[1], x[0, :, 3, 3, None, None].expand(2, 2, 2))
    assert torch.equal(out[2], x[0, :, 4, 4, None, None].expand(2, 2, 2))
    assert torch.equal(out[3].amax(dim=(1, 2)), x[0].amax(dim=(1, 2)))


@pytest.mark.parametrize("spatial_scale", [1e-6, 1e6])
def test_extreme_spatial_scale(spatial_scale):
    x, rois = _inputs(torch.float64)
    out = roi_pool(x, rois, 3, spatial_scale)
    torch.testing.assert_close(out, reference_roi_pool(x, rois, (3, 3), spatial_scale), rtol=0, atol=0)
    assert torch.isfinite(out).all()


def test_empty_rois():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = roi_pool(x, torch.zeros(0, 5), 7, 1.0)
    assert out.shape == (0, 3, 7, 7)
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert roi_pool(x, [torch.zeros(0, 4), torch.zeros(0, 4)], 7, 1.0).shape == (0, 3, 7, 7)
    assert roi_pool(x, [], 7, 1.0).shape == (0, 3, 7, 7)


def test_gradcheck_float64():
    x, rois = _inputs(torch.float64, num_rois=6)
    x = x[:, :2, :8, :10].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: roi_pool(t, rois, (3, 2), 1 / 6), (x,), fast_mode=True)


def test_gradient_matches_reference_autograd():
    x, rois = _inputs(torch.float64)
    x.requires_grad_()
    weight = torch.randn(rois.shape[0], 5, 4, 4, dtype=torch.float64)
    (grad,) = torch.autograd.grad((roi_pool(x, rois, 4, SCALE) * weight).sum(), x)
    (expected,) = torch.autograd.grad((reference_roi_pool(x, rois, (4, 4), SCALE) * weight).sum(), x)
    torch.testing.assert_close(grad, expected)


def test_backward_is_deterministic_across_thread_counts():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 12, 16, generator=g).requires_grad_()
    rois = random_rois(200, 2, 48, 64, g)  # many overlapping RoIs: sums of many terms
    weight = torch.randn(200, 8, 7, 7, generator=g)
    grads = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 1, 2):
            torch.set_num_threads(n)
            (grad,) = torch.autograd.grad((roi_pool(x, rois, 7, SCALE) * weight).sum(), x)
            grads.append(grad)
    finally:
        torch.set_num_threads(threads)
    for grad in grads[1:]:
        assert torch.equal(grad, grads[0])


def test_module():
    x, rois = _inputs()
    module = RoIPool((7, 7), SCALE)
    assert torch.equal(module(x, rois), roi_pool(x, rois, 7, SCALE))
    assert "spatial_scale=0.25" in repr(module)


def test_opcheck():
    x, rois = _inputs(num_rois=5)
    x.requires_grad_()
    torch.library.opcheck(torch.ops.rcnn_cli.roi_pool.default, (x, rois, SCALE, 3, 3))
    _, argmax = torch.ops.rcnn_cli.roi_pool(x, rois, SCALE, 3, 3)
    grad = torch.randn(5, 5, 3, 3)
    torch.library.opcheck(
        torch.ops.rcnn_cli._roi_max_pool_backward.default, (grad, rois, argmax, [9], 2, 5, 12, 16)
    )


def test_absurd_spatial_scale_is_defined():
    x, rois = _inputs()
    out = roi_pool(x, rois * torch.tensor([1.0, 1e6, 1e6, 1e6, 1e6]), 3, 1e12)
    assert out.shape == (rois.shape[0], 5, 3, 3) and torch.isfinite(out).all()
