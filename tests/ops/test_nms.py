"""nms and batched_nms: kept indices equal the reference, the strict threshold, ties."""

from __future__ import annotations

import pytest
import torch
from ops_reference import batched_nms as reference_batched_nms
from ops_reference import nms as reference_nms

from rcnn_cli.ops import batched_nms, nms


def _random_boxes(num, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=g) * 100
    wh = torch.rand(num, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + wh], dim=1).to(dtype)
    scores = torch.rand(num, generator=g).to(dtype)
    return boxes, scores


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.7])
def test_matches_reference(dtype, iou_threshold):
    boxes, scores = _random_boxes(150, seed=int(iou_threshold * 10), dtype=dtype)
    assert torch.equal(nms(boxes, scores, iou_threshold), reference_nms(boxes, scores, iou_threshold))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iou_exactly_at_threshold_is_kept(dtype):
    # IoU of these two boxes is 50 / 100 = 0.5 exactly.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0]], dtype=dtype)
    scores = torch.tensor([0.9, 0.8], dtype=dtype)
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]  # IoU == threshold: not suppressed
    assert nms(boxes, scores, 0.5 - 1e-5).tolist() == [0]
    assert nms(boxes, scores, 0.5 + 1e-5).tolist() == [0, 1]
    # Thresholds closer to 0.5 than float32 can tell apart still compare as doubles.
    assert nms(boxes, scores, 0.5 - 1e-12).tolist() == [0]
    assert nms(boxes, scores, 0.5 + 1e-12).tolist() == [0, 1]


def test_equal_scores_keep_index_order():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.5, 0.5, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert nms(boxes[[1, 0, 2]], scores, 0.5).tolist() == [0, 2]


def test_empty_degenerate_and_non_contiguous():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    # Zero-area boxes have IoU 0/0 = NaN with each other, which never suppresses.
    zero = torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0]])
    assert nms(zero, torch.tensor([1.0, 0.5]), 0.5).tolist() == [0, 1]
    boxes, scores = _random_boxes(60, seed=9)
    wide = torch.zeros(60, 8)
    wide[:, ::2] = boxes
    assert torch.equal(nms(wide[:, ::2], scores, 0.5), nms(boxes, scores, 0.5))


def test_batched_nms_matches_reference():
    boxes, scores = _random_boxes(200, seed=4)
    idxs = torch.randint(5, (200,), generator=torch.Generator().manual_seed(5))
    expected = reference_batched_nms(boxes, scores, idxs, 0.5)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.5), expected)
    # Different categories never suppress each other.
    same = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    assert batched_nms(same, torch.tensor([0.9, 0.8]), torch.tensor([1, 2]), 0.5).tolist() == [0, 1]
    assert batched_nms(same, torch.tensor([0.9, 0.8]), torch.tensor([1, 1]), 0.5).tolist() == [0]
    assert (
        batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).tolist() == []
    )


def test_opcheck():
    boxes, scores = _random_boxes(30, seed=6)
    torch.library.opcheck(torch.ops.rcnn_cli.nms.default, (boxes, scores, 0.5))
