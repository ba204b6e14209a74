"""Box targets: matching, raw encoding and per-class normalization."""

from __future__ import annotations

import math

import torch

from rcnn_cli.training.targets import TargetNormalization, encode_targets, match_proposals


def test_encode_targets_by_hand() -> None:
    roi = torch.tensor([[0.0, 0.0, 10.0, 20.0]])  # centre (5, 10), size 10 x 20
    gt = torch.tensor([[2.0, 4.0, 22.0, 24.0]])  # centre (12, 14), size 20 x 20
    t = encode_targets(roi, gt)[0]
    torch.testing.assert_close(t, torch.tensor([0.7, 0.2, math.log(2.0), 0.0]))


def test_match_proposals_picks_best_gt() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    props = torch.tensor([[21.0, 21.0, 30.0, 30.0], [0.0, 0.0, 5.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    m = match_proposals(props, gt, torch.tensor([2, 1]))
    assert m.gt_index.tolist()[:2] == [1, 0] and m.gt_label.tolist()[:2] == [1, 2]
    torch.testing.assert_close(m.max_iou, torch.tensor([0.81, 0.5, 0.0]))


def test_empirical_normalization_per_class() -> None:
    g = torch.Generator().manual_seed(0)
    t1 = torch.randn(500, 4, generator=g) * torch.tensor([0.1, 0.2, 0.3, 0.4]) + torch.tensor([1.0, 0, 0, -1])
    t2 = torch.randn(300, 4, generator=g) * 2.0
    targets = torch.cat([t1, t2])
    labels = torch.cat([torch.full((500,), 1), torch.full((300,), 2)])
    norm = TargetNormalization.empirical(targets, labels, num_classes=3)
    z = norm.normalize(targets, labels)
    for k in (1, 2):
        torch.testing.assert_close(z[labels == k].mean(0), torch.zeros(4), atol=1e-5, rtol=0)
        torch.testing.assert_close(z[labels == k].std(0, unbiased=False), torch.ones(4), atol=1e-4, rtol=0)
    # class 3 had no samples: mean 0, the fixed stds
    torch.testing.assert_close(norm.stds[3], torch.tensor([0.1, 0.1, 0.2, 0.2]))
    fixed = TargetNormalization.fixed(3)
    torch.testing.assert_close(
        fixed.normalize(torch.tensor([[0.1, 0.2, 0.2, 0.4]]), torch.tensor([1])),
        torch.tensor([[1.0, 2.0, 1.0, 2.0]]),
    )
