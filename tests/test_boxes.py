"""Box utilities against hand computations and properties (hypothesis)."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rcnn_cli.boxes import BoxCoder, box_area, box_iou, clip_boxes, flip_boxes, remove_small_boxes


def _box(draw: st.DrawFn, lo: float = -50.0, hi: float = 500.0, min_side: float = 0.5) -> list[float]:
    x1 = draw(st.floats(lo, hi, allow_nan=False))
    y1 = draw(st.floats(lo, hi, allow_nan=False))
    w = draw(st.floats(min_side, 400.0, allow_nan=False))
    h = draw(st.floats(min_side, 400.0, allow_nan=False))
    return [x1, y1, x1 + w, y1 + h]


@st.composite
def boxes(draw: st.DrawFn, n_min: int = 1, n_max: int = 8) -> torch.Tensor:
    n = draw(st.integers(n_min, n_max))
    return torch.tensor([_box(draw) for _ in range(n)], dtype=torch.float64)


def test_area_and_iou_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]])
    assert box_area(b).tolist() == [100.0, 100.0, 100.0]
    # overlap 5x10 = 50, union 150
    assert torch.allclose(box_iou(a, b), torch.tensor([[50.0 / 150.0, 0.0, 1.0]]))


def test_iou_of_zero_area_boxes_is_zero_not_nan() -> None:
    z = torch.tensor([[3.0, 3.0, 3.0, 3.0]])
    assert box_iou(z, z).item() == 0.0


def test_clip_flip_remove_small() -> None:
    b = torch.tensor([[-5.0, 2.0, 120.0, 70.0], [10.0, 10.0, 11.0, 30.0]])
    assert clip_boxes(b, height=50, width=100).tolist() == [[0.0, 2.0, 100.0, 50.0], [10.0, 10.0, 11.0, 30.0]]
    assert flip_boxes(b, width=100).tolist() == [[-20.0, 2.0, 105.0, 70.0], [89.0, 10.0, 90.0, 30.0]]
    assert remove_small_boxes(b, min_size=2.0).tolist() == [0]


def test_encode_by_hand() -> None:
    coder = BoxCoder(means=(0, 0, 0, 0), stds=(1, 1, 1, 1))
    proposal = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    gt = torch.tensor([[5.0, 0.0, 25.0, 20.0]])
    t = coder.encode(proposal, gt)[0]
    # centres 5 -> 15 (dx 10 / width 10 = 1), width 10 -> 20 (log 2), height unchanged
    assert torch.allclose(t, torch.tensor([1.0, 0.0, math.log(2.0), 0.0]))


@settings(max_examples=200, deadline=None)
@given(boxes(), st.data())
def test_decode_inverts_encode(proposals: torch.Tensor, data: st.DataObject) -> None:
    # gt sizes within 50x of the proposal's: beyond exp(BBOX_XFORM_CLIP) decode clamps on purpose
    ratio = st.floats(1 / 50, 50)
    shift = st.floats(-3, 3)
    gt = proposals.clone()
    for box in gt:
        w, h = float(box[2] - box[0]), float(box[3] - box[1])
        cx, cy = float(box[0]) + w * (0.5 + data.draw(shift)), float(box[1]) + h * (0.5 + data.draw(shift))
        w, h = w * data.draw(ratio), h * data.draw(ratio)
        box[:] = torch.tensor([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    coder = BoxCoder(means=(0.1, -0.2, 0.05, 0.0), stds=(0.1, 0.1, 0.2, 0.2))
    decoded = coder.decode(coder.encode(proposals, gt), proposals)
    assert torch.allclose(decoded, gt, atol=1e-6, rtol=1e-8)


@settings(max_examples=100, deadline=None)
@given(boxes(), boxes())
def test_iou_properties(a: torch.Tensor, b: torch.Tensor) -> None:
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    assert torch.all((iou >= 0) & (iou <= 1 + 1e-12))
    assert torch.allclose(iou, box_iou(b, a).T)
    assert torch.allclose(torch.diagonal(box_iou(a, a)), torch.ones(len(a), dtype=a.dtype))
    # flipping both sets in the same image keeps every IoU
    assert torch.allclose(box_iou(flip_boxes(a, 640), flip_boxes(b, 640)), iou)


def test_decode_class_specific_shape_and_clamp() -> None:
    coder = BoxCoder()
    proposals = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 25.0, 15.0]])
    deltas = torch.zeros(2, 4 * 3)
    deltas[0, 6] = 1e4  # an absurd log-width for class 1 of proposal 0: clamped, finite
    out = coder.decode(deltas, proposals)
    assert out.shape == (2, 12)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[1, 8:12], proposals[1])


def test_decode_of_no_proposals_keeps_the_class_columns() -> None:
    """Tensor[0, 4k] -> Tensor[0, 4k] (reshape(0, -1, 4) cannot say what -1 is; an exported network
    is run on images without proposals too)."""
    out = BoxCoder().decode(torch.zeros(0, 12), torch.zeros(0, 4))
    assert out.shape == (0, 12)
