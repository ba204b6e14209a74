"""Input checks shared by the ops: one clear error instead of a crash in a kernel.

Every public op validates here before calling the compiled kernel. The errors are
:class:`OpInputError`, which is both an :class:`RcnnError` (the CLI prints it as one
line) and a :class:`ValueError` (what Python code expects from a bad argument).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from rcnn_cli.errors import RcnnError
from rcnn_cli.ops import _extension

# Kernel dtypes per device type (CUDA kernels also take double).
_DTYPES = {
    "cpu": (torch.float32, torch.float64),
    "cuda": (torch.float16, torch.bfloat16, torch.float32, torch.float64),
}


class OpInputError(RcnnError, ValueError):
    """A tensor of the wrong shape, dtype or device, or an impossible option."""


def check_feature_map(op: str, input: Tensor) -> None:
    """input must be a floating Tensor[N, C, H, W] on a device the op has a kernel for."""
    if not isinstance(input, Tensor):
        raise OpInputError(f"{op}: input must be a Tensor[N, C, H, W], got {type(input).__name__}")
    if input.dim() != 4:
        raise OpInputError(f"{op}: input must be a 4-D Tensor[N, C, H, W], got shape {tuple(input.shape)}")
    check_device_dtype(op, input, "input")


def check_device_dtype(op: str, tensor: Tensor, name: str) -> None:
    dtypes = _DTYPES.get(tensor.device.type, ())
    if tensor.dtype not in dtypes:
        allowed = ", ".join(str(d).removeprefix("torch.") for d in dtypes) or "none"
        raise OpInputError(
            f"{op}: {name} has dtype {str(tensor.dtype).removeprefix('torch.')} on {tensor.device.type}; "
            f"supported there: {allowed}"
        )
    kernel = "nms" if op in ("nms", "batched_nms") else op
    if tensor.device.type != "meta" and not _extension.has_kernel(kernel, tensor.device):
        raise OpInputError(f"{op}: rcnn_cli._C was built without {tensor.device.type} kernels")


def check_spatial_scale(op: str, spatial_scale: float) -> float:
    scale = float(spatial_scale)
    if not math.isfinite(scale) or scale <= 0:
        raise OpInputError(f"{op}: spatial_scale must be a finite number > 0, got {spatial_scale}")
    return scale


def check_positive_ints(op: str, name: str, values: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(v) for v in values)
    if not out or any(v <= 0 for v in out) or any(int(v) != v for v in values):
        raise OpInputError(f"{op}: {name} must be positive integers, got {tuple(values)}")
    return out


def pair(op: str, output_size: int | Sequence[int]) -> tuple[int, int]:
    """output_size as (height, width), like torchvision's ``_pair``."""
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2:
        raise OpInputError(f"{op}: output_size must be an int or (height, width), got {output_size}")
    return check_positive_ints(op, "output_size", size)  # type: ignore[return-value]


def boxes_to_rois(boxes: Sequence[Tensor]) -> Tensor:
    """A list of Tensor[L_i, 4] (one per image) -> Tensor[sum L_i, 5] with the image index first."""
    columns = [torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(columns, dim=0), torch.cat(list(boxes), dim=0)], dim=1)


def as_rois(op: str, rois: Tensor | Sequence[Tensor], input: Tensor) -> Tensor:
    """Validated Tensor[K, 5] rois in input's dtype and on input's device.

    Accepts Tensor[K, 5] (batch_index, x1, y1, x2, y2) or a list of Tensor[L, 4].
    Checks that coordinates are finite and batch indices are integers in [0, N), except while the call
    is recorded into a graph (``_extension.capturing``). (On CUDA this reads one flag back from the
    device.)
    """
    if isinstance(rois, (list, tuple)):
        for i, b in enumerate(rois):
            if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
                shape = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
                raise OpInputError(f"{op}: rois[{i}] must be a Tensor[L, 4] of boxes, got {shape}")
            if b.device != input.device:
                raise OpInputError(f"{op}: rois[{i}] is on {b.device} but input is on {input.device}")
        rois = boxes_to_rois([b.to(input.dtype) for b in rois]) if rois else input.new_zeros((0, 5))
    if not isinstance(rois, Tensor):
        raise OpInputError(f"{op}: rois must be a Tensor[K, 5] or a list of Tensor[L, 4]")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise OpInputError(
            f"{op}: rois must be a Tensor[K, 5] (batch_index, x1, y1, x2, y2), got shape {tuple(rois.shape)}"
        )
    if rois.device != input.device:
        raise OpInputError(f"{op}: rois are on {rois.device} but input is on {input.device}")
    if not (rois.is_floating_point() or rois.dtype in (torch.int32, torch.int64)):
        raise OpInputError(f"{op}: rois must be floating point, got {rois.dtype}")
    # The value checks read the RoIs back: not where the call is recorded into a graph, whose inputs
    # are symbolic (the graph's caller owns its RoIs' validity, as with any exported model).
    if not _extension.capturing() and rois.shape[0] > 0 and rois.device.type != "meta":
        batch = rois[:, 0]
        bad = (
            ~torch.isfinite(rois).all(dim=1)
            | (batch < 0)
            | (batch >= input.shape[0])
            | (batch != batch.trunc())
        )
        if bool(bad.any()):
            k = int(bad.nonzero()[0, 0])
            raise OpInputError(
                f"{op}: rois[{k}] = {rois[k].tolist()} is invalid: batch index must be an integer in "
                f"[0, {input.shape[0]}) and coordinates finite"
            )
    return rois.to(input.dtype).contiguous()
