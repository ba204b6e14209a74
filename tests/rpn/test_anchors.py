"""Anchors against a hand computation; AnchorConfig's checks; auto scales on hand-made sizes."""

from __future__ import annotations

import math

import pytest
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.rpn.anchors import PAPER_RATIOS, PAPER_SCALES, AnchorConfig, anchors, auto_anchor_scales


def test_ratio_formula_for_one_cell() -> None:
    s = 128.0
    a = anchors((1, 1), 16, scales=(s,), ratios=(0.5, 1.0, 2.0))
    w = a[:, 2] - a[:, 0]
    h = a[:, 3] - a[:, 1]
    # 1:2 (r = H/W = 0.5) of area s²: W = s·√2, H = s/√2; 2:1: W = s/√2, H = s·√2.
    expected_w = torch.tensor([s * math.sqrt(2), s, s / math.sqrt(2)])
    expected_h = torch.tensor([s / math.sqrt(2), s, s * math.sqrt(2)])
    torch.testing.assert_close(w, expected_w)
    torch.testing.assert_close(h, expected_h)
    torch.testing.assert_close(w * h, torch.full((3,), s * s), rtol=1e-5, atol=0)


def test_centres_count_and_order() -> None:
    stride, height, width = 16, 2, 3
    a = anchors((height, width), stride)
    k = len(PAPER_SCALES) * len(PAPER_RATIOS)
    assert a.shape == (height * width * k, 4) and a.dtype == torch.float32
    centres = torch.stack(((a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2), dim=1)
    for i in range(height):
        for j in range(width):
            for t in range(k):
                row = (i * width + j) * k + t
                assert centres[row].tolist() == pytest.approx([(j + 0.5) * stride, (i + 0.5) * stride])
    # within a cell: scale-major, then ratio; anchor t of every cell has the same shape
    sizes = (a[:, 2:] - a[:, :2]).reshape(height * width, k, 2)
    torch.testing.assert_close(sizes, sizes[:1].expand_as(sizes))
    side = sizes[0].prod(dim=1).sqrt()
    torch.testing.assert_close(side, torch.tensor(PAPER_SCALES).repeat_interleave(3), rtol=1e-5, atol=0)


def test_config_defaults_and_errors() -> None:
    assert AnchorConfig().num_anchors == 9
    assert AnchorConfig.for_backbone("vgg16").scales == (128.0, 256.0, 512.0)
    assert AnchorConfig.for_backbone("small").scales == (32.0, 64.0, 128.0)
    assert AnchorConfig(scales=[8, 16]).scales == (8.0, 16.0)
    with pytest.raises(RcnnError, match="--anchor-scales"):
        AnchorConfig(scales=(0.0, 16.0))
    with pytest.raises(RcnnError, match="--anchor-scales"):
        AnchorConfig(scales=())
    with pytest.raises(RcnnError, match="--anchor-ratios"):
        AnchorConfig(ratios=(1.0, float("nan")))
    with pytest.raises(RcnnError, match="--anchor-ratios"):
        AnchorConfig(ratios=(1.0, 1.0))
    with pytest.raises(RcnnError, match="--anchor-ratios"):
        AnchorConfig(ratios=("wide",))


def test_auto_scales_are_quantiles_of_sqrt_area() -> None:
    # sqrt(area) 10..90 in steps of 10 (9 boxes, some non-square): quantiles at 1/6, 1/2, 5/6
    sides = torch.arange(10.0, 100.0, 10.0)
    sizes = torch.stack((sides * 2, sides / 2), dim=1)
    scales, reason = auto_anchor_scales(sizes, count=3)
    assert scales == (23.0, 50.0, 77.0)  # interpolated at positions 8/6, 4, 40/6: 23.3, 50, 76.7
    assert "\n" not in reason and "23, 50, 77" in reason and "9 training boxes" in reason
    # empty boxes do not count; repeated quantiles are given once
    scales, _ = auto_anchor_scales(torch.tensor([[0.0, 5.0], [32.0, 32.0], [32.0, 32.0]]), count=2)
    assert scales == (32.0,)
    with pytest.raises(RcnnError, match="no boxes"):
        auto_anchor_scales(torch.zeros(0, 2))


def test_auto_scales_weigh_each_class_the_same() -> None:
    # Four boxes of side 10 (class 1) and one of side 100 (class 2). Unweighted, both quartiles are 10;
    # with each class weighing 1/2, the sorted sides sit at cumulative-weight midpoints
    # 1/16, 3/16, 5/16, 7/16 (the 10s) and 3/4 (the 100): the quantiles at 1/4 and 3/4 are 10 and 100.
    sizes = torch.tensor([[10.0, 10.0]] * 4 + [[100.0, 100.0]])
    assert auto_anchor_scales(sizes, count=2)[0] == (10.0,)
    scales, reason = auto_anchor_scales(sizes, count=2, labels=torch.tensor([1, 1, 1, 1, 2]))
    assert scales == (10.0, 100.0) and "each class weighing the same" in reason
    # One class: the plain quantiles.
    assert auto_anchor_scales(sizes, count=2, labels=torch.ones(5, dtype=torch.int64))[0] == (10.0,)


def test_anchor_coverage_by_hand() -> None:
    from rcnn_cli.rpn.anchors import anchor_coverage

    # 64x64 image, stride 16, one 32x32 anchor per cell: only the 4 centred at 24 and 40 are inside.
    config = AnchorConfig(scales=(32.0,), ratios=(1.0,))
    gt = torch.tensor([[8.0, 8.0, 40.0, 40.0], [0.0, 0.0, 16.0, 16.0]])  # IoU 1 with one; 64/1216 best
    assert anchor_coverage([gt], [(64, 64)], 16, config) == 0.5
    assert anchor_coverage([gt[:1], torch.zeros((0, 4))], [(64, 64), (64, 64)], 16, config) == 1.0
