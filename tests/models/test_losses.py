"""multi_task_loss and smooth_l1 against hand computations (Fast R-CNN eq. 1-3)."""

from __future__ import annotations

import math

import pytest
import torch

from rcnn_cli.models.losses import multi_task_loss, smooth_l1


def test_smooth_l1_values() -> None:
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 0.999, 1.0, 2.5])
    expected = [2.5, 0.5, 0.125, 0.0, 0.125, 0.5 * 0.999**2, 0.5, 2.0]
    torch.testing.assert_close(smooth_l1(x), torch.tensor(expected))


def hand_case():
    # R = 2 RoIs, K = 2 classes: RoI 0 is class 1 (fg), RoI 1 background.
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
    deltas = torch.zeros(2, 12)
    deltas[0, 4:8] = torch.tensor([0.5, -2.0, 0.0, 1.0])  # t^u for u = 1
    deltas[0, 8:12] = 100.0  # other classes' regressors never count
    deltas[1, :] = 50.0  # background: no box loss
    deltas.requires_grad_(True)
    labels = torch.tensor([1, 0])
    targets = torch.tensor([[0.0, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]])
    return logits, deltas, labels, targets


def test_multi_task_loss_by_hand() -> None:
    logits, deltas, labels, targets = hand_case()
    parts = multi_task_loss(logits, deltas, labels, targets)
    log_p1 = 0.0 - math.log(math.exp(2) + 2)  # -log p_u for RoI 0, u = 1
    log_p0 = 0.0 - math.log(2 + math.e)  # RoI 1, u = 0
    cls = -(log_p1 + log_p0) / 2
    loc = (0.125 + 1.5 + 0.0 + 0.5) / 2
    assert parts.cls.item() == pytest.approx(cls, rel=1e-6)
    assert parts.loc.item() == pytest.approx(loc, rel=1e-6)
    assert parts.total.item() == pytest.approx(cls + loc, rel=1e-6)
    assert parts.accuracy == 0.0  # argmax is class 0 for RoI 0 and class 1 for RoI 1
    parts.total.backward()
    assert deltas.grad[1].abs().sum() == 0 and deltas.grad[0, 8:].abs().sum() == 0
    # d smoothL1/dx = x for |x| < 1, sign(x) beyond, divided by R
    torch.testing.assert_close(deltas.grad[0, 4:8], torch.tensor([0.25, -0.5, 0.0, 0.5]))


def test_lambda_cls_only_and_normalizer() -> None:
    logits, deltas, labels, targets = hand_case()
    base = multi_task_loss(logits, deltas, labels, targets)
    doubled = multi_task_loss(logits, deltas, labels, targets, lam=2.0)
    assert doubled.total.item() == pytest.approx(base.cls.item() + 2 * base.loc.item())
    only = multi_task_loss(logits, deltas, labels, targets, cls_only=True)
    assert only.loc.item() == 0 and only.total.item() == pytest.approx(base.cls.item())
    over_8 = multi_task_loss(logits, deltas, labels, targets, normalizer=8)
    assert over_8.total.item() == pytest.approx(base.total.item() * 2 / 8)


def test_all_background_has_zero_box_loss() -> None:
    logits = torch.zeros(3, 3)
    parts = multi_task_loss(logits, torch.ones(3, 12), torch.zeros(3, dtype=torch.int64), torch.zeros(3, 4))
    assert parts.loc.item() == 0 and parts.cls.item() == pytest.approx(math.log(3))
