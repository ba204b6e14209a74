"""roi_align against the pure-PyTorch reference, gradients and opcheck."""

from __future__ import annotations

import pytest
import torch
from ops_reference import random_rois
from ops_reference import roi_align as reference_roi_align

from rcnn_cli.ops import RoIAlign, roi_align

SCALE = 1 / 4


def _inputs(dtype=torch.float64, seed=2, num_rois=10):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 12, 16, generator=g, dtype=dtype)
    return x, random_rois(num_rois, 2, 48, 64, g, dtype=dtype)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 2])
def test_matches_reference_float64(aligned, sampling_ratio):
    x, rois = _inputs()
    got = roi_align(x, rois, (3, 4), SCALE, sampling_ratio, aligned)
    expected = reference_roi_align(x, rois, (3, 4), SCALE, sampling_ratio, aligned)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_matches_reference_float32():
    x, rois = _inputs(torch.float32)
    got = roi_align(x, rois, 5, SCALE, 2, True)
    expected = reference_roi_align(x.double(), rois.double(), (5, 5), SCALE, 2, True).float()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_hand_computed():
    # On the map x[h, w] = w, bilinear sampling is exact: every bin averages its sample
    # x-coordinates. aligned RoI (0, 0)-(4, 2) -> map (-0.5, -0.5)-(3.5, 1.5), 2 bins wide,
    # 1 sample per bin at x = 0.5 and x = 2.5.
    x = torch.arange(4.0).repeat(1, 1, 3, 1)
    out = roi_align(x, torch.tensor([[0.0, 0.0, 0.0, 4.0, 2.0]]), (1, 2), 1.0, 1, True)
    assert out.flatten().tolist() == [0.5, 2.5]


def test_non_contiguous_channels_last_and_list_rois():
    x, rois = _inputs(torch.float32)
    expected = roi_align(x, rois, 3, SCALE, -1, True)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(roi_align(channels_last, rois, 3, SCALE, -1, True), expected, rtol=0, atol=0)
    strided = torch.stack([x, x], dim=-1)[..., 0]
    assert not strided.is_contiguous()
    torch.testing.assert_close(roi_align(strided, rois, 3, SCALE, -1, True), expected, rtol=0, atol=0)
    order = torch.argsort(rois[:, 0], stable=True)
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    torch.testing.assert_close(roi_align(x, boxes, 3, SCALE, -1, True), expected[order], rtol=0, atol=0)


def test_out_of_map_rois_give_zero_and_empty_rois():
    x = torch.randn(1, 2, 6, 6)
    far = torch.tensor([[0.0, -100.0, -100.0, -50.0, -50.0], [0.0, 50.0, 50.0, 80.0, 90.0]])
    assert torch.equal(roi_align(x, far, 2, 1.0, -1, False), torch.zeros(2, 2, 2, 2))
    assert roi_align(x, torch.zeros(0, 5), 2, 1.0).shape == (0, 2, 2, 2)


@pytest.mark.parametrize("spatial_scale", [1e-6, 1e6])
def test_extreme_spatial_scale_is_defined(spatial_scale):
    x, rois = _inputs(torch.float32)
    out = roi_align(x, rois, 2, spatial_scale, -1, False)
    assert out.shape == (rois.shape[0], 3, 2, 2) and torch.isfinite(out).all()
    if spatial_scale < 1:  # every RoI shrinks to the 1x1 area at the origin
        expected = reference_roi_align(x.double(), rois.double(), (2, 2), spatial_scale, -1, False)
        torch.testing.assert_close(out, expected.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("aligned", [False, True])
def test_gradcheck_float64(aligned):
    x, rois = _inputs(num_rois=4)
    x = x[:, :2, :7, :9].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, 2, 1 / 6, -1, aligned), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(
        lambda t: roi_align(t, rois, (2, 3), 1 / 6, 2, aligned), (x,), fast_mode=True
    )


def test_gradient_matches_reference_autograd():
    x, rois = _inputs()
    x.requires_grad_()
    weight = torch.randn(rois.shape[0], 3, 3, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad((roi_align(x, rois, 3, SCALE, 2, True) * weight).sum(), x)
    ref = reference_roi_align(x, rois, (3, 3), SCALE, 2, True)
    (expected,) = torch.autograd.grad((ref * weight).sum(), x)
    torch.testing.assert_close(grad, expected)


def test_module():
    x, rois = _inputs()
    module = RoIAlign(3, SCALE, sampling_ratio=2, aligned=True)
    assert torch.equal(module(x, rois), roi_align(x, rois, 3, SCALE, 2, True))


def test_opcheck():
    x, rois = _inputs(torch.float32, num_rois=4)
    x.requires_grad_()
    torch.library.opcheck(torch.ops.rcnn_cli.roi_align.default, (x, rois, SCALE, 2, 2, -1, True))
    grad = torch.randn(4, 3, 2, 2)
    torch.library.opcheck(
        torch.ops.rcnn_cli._roi_align_backward.default, (grad, rois, SCALE, 2, 2, 2, 3, 12, 16, -1, True)
    )


def test_backward_is_deterministic_across_thread_counts():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 8, 12, 16, generator=g).requires_grad_()
    rois = random_rois(100, 2, 48, 64, g)
    weight = torch.randn(100, 8, 3, 3, generator=g)
    grads = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 1, 2):
            torch.set_num_threads(n)
            (grad,) = torch.autograd.grad((roi_align(x, rois, 3, SCALE, 2, True) * weight).sum(), x)
            grads.append(grad)
    finally:
        torch.set_num_threads(threads)
    for grad in grads[1:]:
        assert torch.equal(grad, grads[0])
