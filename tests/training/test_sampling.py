"""hierarchical_sampling / region_wise_sampling / sample_rois on hand-made IoU bands."""

from __future__ import annotations

import pytest
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.training.sampling import (
    ImageOrder,
    SamplerConfig,
    hierarchical_sampling,
    region_wise_sampling,
    sample_rois,
)
from rcnn_cli.training.targets import match_proposals

GT = torch.tensor([[0.0, 0.0, 100.0, 100.0]])


def shifted(shift: float) -> list[float]:
    """A 100x100 box moved right by ``shift``: IoU with GT = (100 - s) / (100 + s)."""
    return [shift, 0.0, 100.0 + shift, 100.0]


def iou_of(shift: float) -> float:
    return (100 - shift) / (100 + shift)


def candidates(n_fg: int, n_bg: int, n_low: int) -> torch.Tensor:
    fg = [shifted(s) for s in torch.linspace(0, 33.3, n_fg).tolist()]  # IoU 1 .. 0.5
    bg = [shifted(s) for s in torch.linspace(34, 81.8, n_bg).tolist()]  # IoU 0.49 .. 0.1
    low = [shifted(s) for s in torch.linspace(82.5, 99, n_low).tolist()]  # IoU < 0.1
    return torch.tensor(fg + bg + low)


def test_sample_rois_fractions_and_iou_bands() -> None:
    boxes = candidates(40, 100, 50)
    m = match_proposals(boxes, GT, torch.tensor([3]))
    assert m.max_iou[:40].min() >= 0.5 and m.max_iou[40:140].max() < 0.5 and m.max_iou[140:].max() < 0.1
    g = torch.Generator().manual_seed(0)
    s = sample_rois(m.max_iou, m.gt_label, 64, SamplerConfig(), g)
    assert s.index.numel() == 64 and s.num_fg == 16  # 25% of R/N = 64
    iou = m.max_iou[s.index]
    fg = s.labels > 0
    assert (iou[fg] >= 0.5).all() and (s.labels[fg] == 3).all()
    assert (iou[~fg] >= 0.1).all() and (iou[~fg] < 0.5).all()
    assert s.index.unique().numel() == 64  # without replacement


def test_band_edges_are_half_open() -> None:
    max_iou = torch.tensor([0.5, 0.1, 0.0999, 0.4999])
    labels = torch.tensor([1, 1, 1, 1])
    cfg = SamplerConfig(fg_fraction=1.0)
    s = sample_rois(max_iou, labels, 4, cfg, torch.Generator().manual_seed(0))
    assert s.index.tolist() == [0, 3, 1] or sorted(s.index.tolist()) == [0, 1, 3]
    assert s.labels[s.index == 0].item() == 1 and (s.labels[s.index != 0] == 0).all()


def test_few_foreground_fill_with_background_and_no_padding() -> None:
    m = match_proposals(candidates(5, 100, 0), GT, torch.tensor([1]))
    s = sample_rois(m.max_iou, m.gt_label, 64, SamplerConfig(), torch.Generator().manual_seed(1))
    assert s.num_fg == 5 and s.index.numel() == 64
    m = match_proposals(candidates(40, 10, 30), GT, torch.tensor([1]))
    s = sample_rois(m.max_iou, m.gt_label, 64, SamplerConfig(), torch.Generator().manual_seed(1))
    assert s.num_fg == 16 and s.index.numel() == 26  # only 10 bg candidates; low-IoU ones never used


def test_image_without_objects_trains_as_background() -> None:
    boxes = candidates(0, 30, 30)
    m = match_proposals(boxes, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))
    s = sample_rois(
        m.max_iou, m.gt_label, 32, SamplerConfig(), torch.Generator().manual_seed(0), has_gt=False
    )
    assert s.index.numel() == 32 and s.num_fg == 0


def test_one_roi_per_image_is_foreground_with_probability_fg_fraction() -> None:
    m = match_proposals(candidates(40, 100, 0), GT, torch.tensor([2]))
    g = torch.Generator().manual_seed(0)
    fg = sum(sample_rois(m.max_iou, m.gt_label, 1, SamplerConfig(), g).num_fg for _ in range(4000))
    assert abs(fg / 4000 - 0.25) < 0.03


def test_hierarchical_vs_region_wise_plans() -> None:
    order = ImageOrder(300, seed=0)
    plan = hierarchical_sampling(order, 2, 128)
    assert len(plan.images) == 2 and [c for _, c in plan.images] == [64, 64] and plan.num_rois == 128
    assert plan.images[0][0] != plan.images[1][0]
    plan = region_wise_sampling(ImageOrder(300, seed=0), 128)
    assert len({i for i, _ in plan.images}) == 128 and plan.num_rois == 128


def test_image_order_epochs_and_ranks() -> None:
    order = ImageOrder(10, seed=3)
    first = order.take(10)
    assert sorted(first) == list(range(10))
    state = order.state_dict()
    nxt = order.take(7)
    order.load_state_dict(state)
    assert order.take(7) == nxt
    r0, r1 = ImageOrder(10, seed=3, rank=0, world_size=2), ImageOrder(10, seed=3, rank=1, world_size=2)
    a, b = r0.take(5), r1.take(5)
    assert sorted(a + b) == list(range(10))  # ranks split each epoch


def test_bad_sampler_config() -> None:
    with pytest.raises(RcnnError):
        SamplerConfig(images_per_batch=4, rois_per_batch=2)
    with pytest.raises(RcnnError):
        SamplerConfig(bg_threshold_lo=0.6)
