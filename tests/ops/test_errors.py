"""Bad inputs give one clear OpInputError (an RcnnError and a ValueError), never a crash."""

from __future__ import annotations

import sys

import pytest
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.ops import OpInputError, _extension, batched_nms, nms, roi_align, roi_pool, spp_pool

X = torch.randn(2, 3, 8, 8)
ROIS = torch.tensor([[0.0, 0.0, 0.0, 16.0, 16.0], [1.0, 4.0, 4.0, 20.0, 24.0]])

POOLS = {
    "roi_pool": lambda x, r, scale=0.5: roi_pool(x, r, 2, scale),
    "spp_pool": lambda x, r, scale=0.5: spp_pool(x, r, (2, 1), scale),
    "roi_align": lambda x, r, scale=0.5: roi_align(x, r, 2, scale),
}


def test_error_is_rcnn_error_and_value_error():
    assert issubclass(OpInputError, RcnnError) and issubclass(OpInputError, ValueError)


@pytest.mark.parametrize("op", POOLS)
@pytest.mark.parametrize(
    ("x", "rois", "message"),
    [
        (X[0], ROIS, "4-D Tensor"),
        (X.long(), ROIS, "dtype int64"),
        (X.half(), ROIS, "dtype float16 on cpu"),
        (X, ROIS[:, :4], r"Tensor\[K, 5\]"),
        (X, ROIS[0], r"Tensor\[K, 5\]"),
        (X, torch.tensor([[2.0, 0, 0, 4, 4]]), r"rois\[0\].*batch index must be an integer in \[0, 2\)"),
        (X, torch.tensor([[0.0, 0, 0, 4, 4], [-1.0, 0, 0, 4, 4]]), r"rois\[1\]"),
        (X, torch.tensor([[0.5, 0, 0, 4, 4]]), "integer"),
        (X, torch.tensor([[0.0, float("nan"), 0, 4, 4]]), "finite"),
        (X, torch.tensor([[0.0, 0, 0, float("inf"), 4]]), "finite"),
        (X, [torch.zeros(2, 5)], r"rois\[0\] must be a Tensor\[L, 4\]"),
        (X, "boxes", "rois must be"),
        (X, ROIS.to("meta"), "rois are on meta"),
    ],
)
def test_bad_pooling_inputs(op, x, rois, message):
    with pytest.raises(OpInputError, match=message):
        POOLS[op](x, rois)


@pytest.mark.parametrize("op", POOLS)
@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_spatial_scale(op, scale):
    with pytest.raises(OpInputError, match="spatial_scale"):
        POOLS[op](X, ROIS, scale)


def test_bad_sizes():
    with pytest.raises(OpInputError, match="output_size"):
        roi_pool(X, ROIS, (0, 2), 1.0)
    with pytest.raises(OpInputError, match="output_size"):
        roi_align(X, ROIS, (2, 2, 2), 1.0)
    with pytest.raises(OpInputError, match="levels"):
        spp_pool(X, ROIS, (), 1.0)
    with pytest.raises(OpInputError, match="levels"):
        spp_pool(X, ROIS, (3, -1), 1.0)
    with pytest.raises(OpInputError, match="sampling_ratio"):
        roi_align(X, ROIS, 2, 1.0, sampling_ratio=1.5)


def test_direct_op_call_with_bad_batch_index_raises_not_crashes():
    with pytest.raises(RuntimeError, match=r"roi_pool: rois.*batch indices"):
        torch.ops.rcnn_cli.roi_pool(X, torch.tensor([[5.0, 0, 0, 4, 4]]), 1.0, 2, 2)
    with pytest.raises(RuntimeError, match=r"spp_pool: rois.*batch indices"):
        torch.ops.rcnn_cli.spp_pool(X, torch.tensor([[2.0, 0, 0, 4, 4]]), 1.0, [2, 1])
    with pytest.raises(RuntimeError, match=r"roi_align: rois.*batch indices"):
        torch.ops.rcnn_cli.roi_align(X, torch.tensor([[-1.0, 0, 0, 4, 4]]), 1.0, 2, 2, -1, False)


def test_direct_backward_call_with_bad_arguments_raises():
    ops = _extension.ops()
    backward = ops._roi_max_pool_backward
    grad, argmax = torch.zeros(2, 3 * 4), torch.zeros(2, 3 * 4, dtype=torch.int32)
    with pytest.raises(RuntimeError, match="grid_bins must not be empty"):
        backward(grad[:0], ROIS[:0], argmax[:0], [], 2, 3, 8, 8)  # checked even with no RoIs
    with pytest.raises(RuntimeError, match=r"expected K \* C \* sum"):
        backward(grad, ROIS, argmax, [2], 2, 3, 8, 8)
    with pytest.raises(RuntimeError, match="argmax must be int32"):
        backward(grad, ROIS, argmax.long(), [4], 2, 3, 8, 8)
    with pytest.raises(RuntimeError, match=r"grad must be \[K, C, pooled_height, pooled_width\]"):
        ops._roi_align_backward(torch.zeros(2, 3, 2, 3), ROIS, 1.0, 2, 2, 2, 3, 8, 8, -1, False)


@pytest.mark.parametrize(
    ("boxes", "scores", "message"),
    [
        (torch.zeros(3, 5), torch.zeros(3), r"Tensor\[N, 4\]"),
        (torch.zeros(3, 4), torch.zeros(2), r"Tensor\[3\]"),
        (torch.zeros(3, 4, dtype=torch.int64), torch.zeros(3), "dtype int64"),
        (torch.zeros(3, 4), torch.zeros(3, dtype=torch.int64), "scores must be floating"),
        (torch.zeros(3, 4), torch.zeros(3, device="meta"), "scores on meta"),
    ],
)
def test_bad_nms_inputs(boxes, scores, message):
    with pytest.raises(OpInputError, match=message):
        nms(boxes, scores, 0.5)


def test_bad_batched_nms_inputs():
    with pytest.raises(OpInputError, match="idxs"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(3), 0.5)
    with pytest.raises(OpInputError, match="idxs"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, dtype=torch.int64), 0.5)
    with pytest.raises(OpInputError, match="iou_threshold"):
        nms(torch.zeros(3, 4), torch.zeros(3), float("nan"))


def test_missing_extension_says_how_to_build(monkeypatch):
    monkeypatch.setitem(sys.modules, "rcnn_cli._C", None)  # makes `from rcnn_cli import _C` fail
    with pytest.raises(RcnnError, match=r"not built.*make install"):
        _extension.load.__wrapped__()
