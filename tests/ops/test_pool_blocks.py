"""The CPU kernels' channel blocking, against the pure-PyTorch references.

The CPU roi_pool/spp_pool forward keeps the running maxima of 32 float (16 double) channels
in registers and takes a slower loop for the rest of a 64-channel block; roi_align's forward
does the same with its sums over a channels-last map; the max-pool backward walks the RoIs
once per 16 channels and runs a small batch as one task. The other tests use 5 channels, so
they only reach the remainders: here the channel counts straddle every group and block edge.
"""

from __future__ import annotations

import pytest
import torch
from ops_reference import random_rois
from ops_reference import roi_align as reference_roi_align
from ops_reference import roi_pool as reference_roi_pool
from ops_reference import spp_pool as reference_spp_pool

from rcnn_cli.ops import roi_align, roi_pool, spp_pool

SCALE = 1 / 4  # feature map 9x11 of a 36x44 image
# 1 channel; below, at and above a float group (32) and a double group (16); a block of 64
# plus a remainder; two blocks plus a remainder that is not a multiple of the vector width.
CHANNELS = [1, 15, 16, 17, 31, 32, 33, 64, 69, 133]


def _inputs(channels: int, dtype: torch.dtype, num_rois: int = 12, seed: int = 0):
    """Features [2, channels, 9, 11] and RoIs [num_rois, 5] (some empty, inverted or outside)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, channels, 9, 11, generator=g, dtype=dtype)
    return x, random_rois(num_rois, 2, 36, 44, g, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", CHANNELS)
def test_roi_pool_forward_across_blocks(channels, dtype):
    x, rois = _inputs(channels, dtype)
    expected = reference_roi_pool(x, rois, (3, 4), SCALE)
    torch.testing.assert_close(roi_pool(x, rois, (3, 4), SCALE), expected, rtol=0, atol=0)
    with torch.no_grad():  # the argmax-free inference kernel
        torch.testing.assert_close(roi_pool(x, rois, (3, 4), SCALE), expected, rtol=0, atol=0)


@pytest.mark.parametrize("channels", [1, 17, 33, 69])
def test_spp_pool_forward_across_blocks(channels):
    x, rois = _inputs(channels, torch.float32)
    expected = reference_spp_pool(x, rois, (4, 2, 1), SCALE)
    torch.testing.assert_close(spp_pool(x, rois, (4, 2, 1), SCALE), expected, rtol=0, atol=0)


@pytest.mark.parametrize("channels", [1, 33, 69])
def test_roi_pool_argmax_picks_the_first_maximum(channels):
    """Constant maps tie everywhere: the argmax must be each bin's first pixel in row-major order."""
    x = torch.ones(1, channels, 9, 11)
    rois = torch.tensor([[0.0, 0.0, 0.0, 40.0, 32.0], [0.0, 8.0, 4.0, 20.0, 30.0]])
    _, argmax = torch.ops.rcnn_cli.roi_pool(x, rois, SCALE, 3, 3)
    first = argmax[:, :1]
    assert torch.equal(argmax, first.expand_as(argmax))  # every channel picks the same pixel
    # RoI 0 covers the whole 9x11 map: 3x3 bins of 3 rows and 4 columns (floor of 11 * j / 3).
    assert argmax[0, 0].flatten().tolist() == [h * 11 + w for h in (0, 3, 6) for w in (0, 3, 7)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("num_rois", [3, 300])
@pytest.mark.parametrize("channels", [1, 17, 69])
def test_max_pool_backward_matches_reference_gradient(channels, num_rois, threads):
    """3 RoIs take the one-task backward, 300 x 69 channels the parallel one; same gradient."""
    x, rois = _inputs(channels, torch.float64, num_rois=num_rois)
    grad = torch.randn(
        num_rois, channels, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    ours = x.clone().requires_grad_()
    ref = x.clone().requires_grad_()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        roi_pool(ours, rois, 3, SCALE).backward(grad)
    finally:
        torch.set_num_threads(previous)
    reference_roi_pool(ref, rois, (3, 3), SCALE).backward(grad)
    torch.testing.assert_close(ours.grad, ref.grad, rtol=1e-12, atol=1e-12)


def test_max_pool_backward_is_the_same_at_any_thread_count():
    x, rois = _inputs(69, torch.float32, num_rois=400)
    grads = []
    for threads in (1, 2):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            t = x.clone().requires_grad_()
            spp_pool(t, rois, (3, 1), SCALE).sum().backward()
        finally:
            torch.set_num_threads(previous)
        grads.append(t.grad)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [2, 0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [1, 15, 17, 33, 69, 133])
def test_roi_align_forward_across_blocks(channels, dtype, sampling_ratio, aligned):
    x, rois = _inputs(channels, dtype, num_rois=6)
    expected = reference_roi_align(x, rois, (3, 2), SCALE, sampling_ratio, aligned)
    got = roi_align(x, rois, (3, 2), SCALE, sampling_ratio, aligned)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, expected, rtol=tolerance, atol=tolerance)
    # A channels-last input is the kernel's own layout: the same numbers bit for bit.
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(roi_align(channels_last, rois, (3, 2), SCALE, sampling_ratio, aligned), got)


def test_roi_align_many_rois_span_several_chunks():
    """More RoIs than one forward tile (32) and a channel remainder: every tile is written."""
    x, rois = _inputs(69, torch.float64, num_rois=70)
    expected = reference_roi_align(x, rois, (2, 2), SCALE, 1, True)
    torch.testing.assert_close(roi_align(x, rois, (2, 2), SCALE, 1, True), expected, rtol=1e-12, atol=1e-12)


def test_roi_align_gradcheck_across_a_group_edge():
    x, rois = _inputs(17, torch.float64, num_rois=3)
    x = x[:1, :, :5, :6].contiguous().requires_grad_()
    rois[:, 0] = 0
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, 2, SCALE, 2, True), (x,), fast_mode=True)


def test_empty_and_outside_rois_across_blocks():
    x, _ = _inputs(33, torch.float32)
    rois = torch.tensor([[0.0, -500.0, -500.0, -100.0, -100.0], [1.0, 400.0, 400.0, 500.0, 500.0]])
    assert torch.equal(roi_pool(x, rois, 2, SCALE), torch.zeros(2, 33, 2, 2))
    torch.testing.assert_close(
        roi_align(x, rois, 2, SCALE, 2, True), reference_roi_align(x, rois, (2, 2), SCALE, 2, True)
    )
    none = torch.zeros(0, 5)
    assert roi_pool(x, none, 2, SCALE).shape == (0, 33, 2, 2)
    assert roi_align(x, none, 2, SCALE, 2, True).shape == (0, 33, 2, 2)
