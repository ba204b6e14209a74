"""Max pooling at test time: without a gradient to compute, roi_pool and spp_pool skip the argmax
(``rcnn_cli::_roi_max_pool_values``) and must give exactly what the training-time ops give."""

from __future__ import annotations

import pytest
import torch
from ops_reference import random_rois
from ops_reference import roi_pool as reference_roi_pool

from rcnn_cli.ops import roi_pool, spp_pool

SCALE = 1 / 4  # feature map 12x16 of a 48x64 image


def _inputs(dtype: torch.dtype = torch.float32, seed: int = 0, num_rois: int = 64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 70, 12, 16, generator=g, dtype=dtype)  # 70 channels: a full and a partial block of 64
    rois = random_rois(num_rois, 2, 48, 64, g, dtype=dtype)
    odd = torch.tensor(
        [
            [0, -100.0, -100.0, -50.0, -50.0],
            [1, 3.0, 3.0, 3.0, 3.0],
            [1, 40.0, 30.0, 4.0, 2.0],
            [0, -9, -9, 99, 99],
        ],
        dtype=dtype,
    )
    return x, torch.cat([rois, odd])


def _ops_called(fn) -> set[str]:  # type: ignore[no-untyped-def]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {event.name for event in prof.events() if event.name.startswith("rcnn_cli::")}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("output_size", [(7, 7), (2, 5)])
def test_roi_pool_inference_equals_training_op(dtype, output_size) -> None:  # type: ignore[no-untyped-def]
    x, rois = _inputs(dtype)
    trained, _argmax = torch.ops.rcnn_cli.roi_pool(x, rois, SCALE, *output_size)
    with torch.inference_mode():
        inferred = roi_pool(x, rois, output_size, SCALE)
    assert torch.equal(inferred, trained)
    torch.testing.assert_close(inferred, reference_roi_pool(x, rois, output_size, SCALE), rtol=0, atol=0)


@pytest.mark.parametrize("levels", [(6, 3, 2, 1), (7,), (4, 2), (5, 3)])
def test_spp_pool_inference_equals_training_op(levels) -> None:  # type: ignore[no-untyped-def]
    x, rois = _inputs(torch.float64)
    trained, _argmax = torch.ops.rcnn_cli.spp_pool(x, rois, SCALE, list(levels))
    with torch.no_grad():
        inferred = spp_pool(x, rois, levels, SCALE)
    assert torch.equal(inferred, trained)


def test_nan_propagates_as_in_the_training_op() -> None:
    x, rois = _inputs()
    x[0, 3, 5, 7] = float("nan")
    trained, _ = torch.ops.rcnn_cli.roi_pool(x, rois, SCALE, 7, 7)
    with torch.no_grad():
        inferred = roi_pool(x, rois, 7, SCALE)
    torch.testing.assert_close(inferred, trained, rtol=0, atol=0, equal_nan=True)


def test_the_argmax_is_skipped_only_when_no_gradient_can_be_asked_for() -> None:
    x, rois = _inputs(num_rois=8)
    values, training = "rcnn_cli::_roi_max_pool_values", "rcnn_cli::roi_pool"
    with torch.no_grad():
        assert _ops_called(lambda: roi_pool(x, rois, 7, SCALE)) == {values}
    assert _ops_called(lambda: roi_pool(x, rois, 7, SCALE)) == {values}  # x needs no gradient
    x.requires_grad_()
    assert _ops_called(lambda: roi_pool(x, rois, 7, SCALE)) == {training}
    with torch.inference_mode():
        assert _ops_called(lambda: spp_pool(x.detach(), rois, (2, 1), SCALE)) == {values}
    assert _ops_called(lambda: spp_pool(x, rois, (2, 1), SCALE)) == {"rcnn_cli::spp_pool"}


def test_opcheck_and_bad_grids() -> None:
    x, rois = _inputs(num_rois=5)
    torch.library.opcheck(torch.ops.rcnn_cli._roi_max_pool_values.default, (x, rois, SCALE, [3, 3, 2, 1]))
    for grids in ([3], [], [3, 0]):
        with pytest.raises(RuntimeError, match="grid"):
            torch.ops.rcnn_cli._roi_max_pool_values(x, rois, SCALE, grids)
