"""Our RoI poolings in standard ONNX operators: the ``custom_translation_table`` of
``torch.onnx.export`` (the torch.export-based exporter; each function builds its part of the graph
with ONNX Script ops when the exporter meets ``torch.ops.rcnn_cli.<op>``).

- ``roi_pool`` → ``MaxRoiPool`` (opset 1). The same arithmetic as our kernel (``ops/roi_pool_math.h``,
  torchvision's): corners ``round(x · spatial_scale)`` half away from zero, window ``max(x2' − x1' + 1,
  1)`` cells, bin j ``[floor(j · w'/pw), ceil((j + 1) · w'/pw))`` shifted and clipped to the map, a bin's
  maximum started from −FLT_MAX, an empty bin 0; so onnxruntime's numbers are ours exactly
  (tests/inference/test_export_ops.py, negative inputs and x.5 corners included).
- ``spp_pool`` → one ``MaxRoiPool`` per pyramid level, each ``Flatten(axis=1)``, then ``Concat(axis=1)``:
  the op's own layout (level by level, channel-major within a level), since each level is RoI pooling.
- ``roi_align`` → ``RoiAlign`` (opset 16) on ``rois[:, 1:]`` with ``rois[:, 0]`` as int64 batch indices;
  ``aligned=True`` is ``coordinate_transformation_mode="half_pixel"``, ``False`` the legacy
  ``"output_half_pixel"``; an adaptive ``sampling_ratio`` (≤ 0) is ONNX's 0. Average mode.
- ``aten.sort.stable`` → ``TopK`` of every element (ties to the lower index, as a stable sort): the
  exporter translates no stable sort, and the proposal layer ranks its anchors with one.
- ``nms`` → ``NonMaxSuppression`` (opset 10) of one batch and one class, every box allowed through, no
  score threshold; column 2 of its ``[M, 3]`` answer is our kept indices. onnxruntime suppresses at IoU
  strictly above the threshold and visits equal scores by index, as our kernel does (both checked in
  tests/inference/test_export_ops.py). Only the Faster R-CNN network has an NMS inside, its proposal
  layer's; the per-class NMS of the detections stays with the caller (it caps per class and orders by
  class in ways that differ between toolkits).

``roi_pool`` and ``spp_pool`` also return the argmax that their backward pass needs. ONNX has no such
output; the translation gives a placeholder, and :func:`check_no_argmax` makes sure that the graph
being exported never reads it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch

#: The opset the exported model declares: RoiAlign's coordinate_transformation_mode needs 16; 18 is
#: what the exporter's own ATen translations are written for.
OPSET = 18

#: ONNX TensorProto data type of the argmax placeholder (int32, as our kernels' argmax).
_INT32 = 6


def _op() -> Any:
    from onnxscript import opset18

    return opset18


def roi_pool(input: Any, rois: Any, spatial_scale: float, pooled_height: int, pooled_width: int) -> Any:
    op = _op()
    pooled = op.MaxRoiPool(
        input, rois, pooled_shape=[pooled_height, pooled_width], spatial_scale=float(spatial_scale)
    )
    return pooled, op.Cast(pooled, to=_INT32)  # the argmax placeholder (see the module docstring)


def spp_pool(input: Any, rois: Any, spatial_scale: float, levels: list[int]) -> Any:
    op = _op()
    flat = [
        op.Flatten(
            op.MaxRoiPool(input, rois, pooled_shape=[level, level], spatial_scale=float(spatial_scale))
        )
        for level in levels
    ]
    pooled = op.Concat(*flat, axis=1) if len(flat) > 1 else flat[0]
    return pooled, op.Cast(pooled, to=_INT32)


def roi_align(
    input: Any,
    rois: Any,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> Any:
    op = _op()
    boxes = op.Slice(
        rois, op.Constant(value_ints=[1]), op.Constant(value_ints=[5]), op.Constant(value_ints=[1])
    )
    batch = op.Cast(
        op.Squeeze(op.Gather(rois, op.Constant(value_ints=[0]), axis=1), op.Constant(value_ints=[1])), to=7
    )
    return op.RoiAlign(
        input,
        boxes,
        batch,
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel",
        mode="avg",
        output_height=pooled_height,
        output_width=pooled_width,
        sampling_ratio=max(int(sampling_ratio), 0),
        spatial_scale=float(spatial_scale),
    )


def nms(dets: Any, scores: Any, iou_threshold: float) -> Any:
    op = _op()
    boxes = op.Unsqueeze(dets, op.Constant(value_ints=[0]))  # [1, N, 4]: one batch
    per_class = op.Unsqueeze(scores, op.Constant(value_ints=[0, 1]))  # [1, 1, N]: one class
    selected = op.NonMaxSuppression(
        boxes, per_class, op.Shape(scores), op.Constant(value_floats=[float(iou_threshold)])
    )  # [M, 3] rows (batch, class, box index), by decreasing score
    return op.Squeeze(op.Gather(selected, op.Constant(value_ints=[2]), axis=1), op.Constant(value_ints=[1]))


def stable_sort(self: Any, stable: bool | None = None, dim: int = -1, descending: bool = False) -> Any:
    """``aten.sort.stable`` (which the exporter has no translation of) as ``TopK`` of every element:
    ONNX's TopK gives equal values by lower index first, what a stable sort keeps."""
    op = _op()
    count = op.Gather(op.Shape(self), op.Constant(value_ints=[dim]))
    return op.TopK(self, count, axis=dim, largest=1 if descending else 0, sorted=1)


def translation_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    """``{torch.ops.rcnn_cli.<op>.default: translation}`` for ``torch.onnx.export``, and the stable
    sort of the Faster R-CNN proposal layer."""
    from rcnn_cli.ops import _extension

    ops = _extension.ops()
    return {
        ops.roi_pool.default: roi_pool,
        ops.spp_pool.default: spp_pool,
        ops.roi_align.default: roi_align,
        ops.nms.default: nms,
        torch.ops.aten.sort.stable: stable_sort,
    }


def check_no_argmax(program: torch.export.ExportedProgram) -> int:
    """Raise if a node of ``program`` reads the argmax output of ``roi_pool``/``spp_pool``, which the
    ONNX translation does not compute (a programming error, not the user's); else the number of
    such pooling nodes checked."""
    from rcnn_cli.ops import _extension

    ops = _extension.ops()
    pools = {ops.roi_pool.default, ops.spp_pool.default}
    found = 0
    for node in program.graph.nodes:
        if node.target not in pools:
            continue
        found += 1
        for user in node.users:
            allowed = user.target is operator.getitem and (
                user.args[1] == 0 or not user.users
            )  # pooled, or a dead argmax
            if not allowed:
                raise AssertionError(
                    f"{node.name}'s argmax is read by {user.name}: no ONNX translation has it"
                )
    return found
