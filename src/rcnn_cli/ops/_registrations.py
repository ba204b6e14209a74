"""Python side of the compiled ops: autograd formulas and fake kernels.

The C++ library (ops/bindings.cpp) defines the schemas and the CPU/CUDA kernels.
Here, once the library is loaded, each op gets
- a fake kernel (``torch.library.register_fake``): output shapes without data, for
  torch.compile, meta tensors and ``torch.library.opcheck``;
- an autograd formula (``torch.library.register_autograd``) that calls the op's
  compiled backward.
Called once by :func:`rcnn_cli.ops._extension.load`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _roi_pool_fake(
    input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int
) -> tuple[Tensor, Tensor]:
    shape = (rois.shape[0], input.shape[1], pooled_height, pooled_width)
    return input.new_empty(shape), input.new_empty(shape, dtype=torch.int32)


def _spp_pool_fake(
    input: Tensor, rois: Tensor, spatial_scale: float, levels: list[int]
) -> tuple[Tensor, Tensor]:
    shape = (rois.shape[0], input.shape[1] * sum(level * level for level in levels))
    return input.new_empty(shape), input.new_empty(shape, dtype=torch.int32)


def _roi_max_pool_values_fake(input: Tensor, rois: Tensor, spatial_scale: float, grids: list[int]) -> Tensor:
    bins = sum(h * w for h, w in zip(grids[0::2], grids[1::2], strict=True))
    return input.new_empty((rois.shape[0], input.shape[1] * bins))


def _roi_max_pool_backward_fake(
    grad: Tensor,
    rois: Tensor,
    argmax: Tensor,
    grid_bins: list[int],
    batch_size: int,
    channels: int,
    height: int,
    width: int,
) -> Tensor:
    return grad.new_empty((batch_size, channels, height, width))


def _roi_align_fake(
    input: Tensor,
    rois: Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    return input.new_empty((rois.shape[0], input.shape[1], pooled_height, pooled_width))


def _roi_align_backward_fake(
    grad: Tensor,
    rois: Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    return grad.new_empty((batch_size, channels, height, width))


def _nms_fake(dets: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    # The number of kept boxes depends on the data.
    num_kept = torch.library.get_ctx().new_dynamic_size()
    return dets.new_empty((num_kept,), dtype=torch.int64)


# --- autograd -------------------------------------------------------------------------------


def _max_pool_setup_context(ctx, inputs, output) -> None:
    input, rois = inputs[0], inputs[1]
    ctx.save_for_backward(rois, output[1])
    ctx.input_shape = tuple(input.shape)


def _max_pool_backward(ctx, grad_output: Tensor, _grad_argmax: Tensor | None):
    rois, argmax = ctx.saved_tensors
    grad_input = torch.ops.rcnn_cli._roi_max_pool_backward(
        grad_output, rois, argmax, ctx.grid_bins, *ctx.input_shape
    )
    return (grad_input,) + (None,) * ctx.num_other_inputs


def _roi_pool_setup_context(ctx, inputs, output) -> None:
    _max_pool_setup_context(ctx, inputs, output)
    ctx.grid_bins = [inputs[3] * inputs[4]]
    ctx.num_other_inputs = 4


def _spp_pool_setup_context(ctx, inputs, output) -> None:
    _max_pool_setup_context(ctx, inputs, output)
    ctx.grid_bins = [level * level for level in inputs[3]]
    ctx.num_other_inputs = 3


def _roi_align_setup_context(ctx, inputs, output) -> None:
    input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = inputs
    ctx.save_for_backward(rois)
    ctx.input_shape = tuple(input.shape)
    ctx.params = (spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)


def _roi_align_backward(ctx, grad_output: Tensor):
    (rois,) = ctx.saved_tensors
    spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = ctx.params
    grad_input = torch.ops.rcnn_cli._roi_align_backward(
        grad_output,
        rois,
        spatial_scale,
        pooled_height,
        pooled_width,
        *ctx.input_shape,
        sampling_ratio,
        aligned,
    )
    return grad_input, None, None, None, None, None, None


def register() -> None:
    """Register fake kernels and autograd formulas for every rcnn_cli op."""
    fake = torch.library.register_fake
    fake("rcnn_cli::roi_pool")(_roi_pool_fake)
    fake("rcnn_cli::spp_pool")(_spp_pool_fake)
    fake("rcnn_cli::_roi_max_pool_values")(_roi_max_pool_values_fake)
    fake("rcnn_cli::_roi_max_pool_backward")(_roi_max_pool_backward_fake)
    fake("rcnn_cli::roi_align")(_roi_align_fake)
    fake("rcnn_cli::_roi_align_backward")(_roi_align_backward_fake)
    fake("rcnn_cli::nms")(_nms_fake)

    autograd = torch.library.register_autograd
    autograd("rcnn_cli::roi_pool", _max_pool_backward, setup_context=_roi_pool_setup_context)
    autograd("rcnn_cli::spp_pool", _max_pool_backward, setup_context=_spp_pool_setup_context)
    autograd("rcnn_cli::roi_align", _roi_align_backward, setup_context=_roi_align_setup_context)
