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


def test_iou_quality_target_by_hand() -> None:
    """--cls-target iou: a foreground RoI at IoU q learns q on its class and 1 - q on background."""
    logits, deltas, labels, targets = hand_case()
    quality = torch.tensor([0.8, 0.3])  # RoI 1 is background: its IoU must not matter
    parts = multi_task_loss(logits, deltas, labels, targets, quality=quality)
    z = math.log(math.exp(2) + 2)  # RoI 0's log-partition
    roi0 = -(0.2 * (2.0 - z) + 0.8 * (0.0 - z))
    roi1 = math.log(2 + math.e)  # -log p_0 for logits (0, 1, 0), as with the hard target
    assert parts.cls.item() == pytest.approx((roi0 + roi1) / 2, rel=1e-6)
    hard = multi_task_loss(logits, deltas, labels, targets)
    assert parts.loc.item() == pytest.approx(hard.loc.item())  # the box loss does not change
    parts.cls.backward()
    # d/dz of the soft cross-entropy is softmax(z) - target, here divided by R = 2
    p0 = torch.softmax(torch.tensor([2.0, 0.0, 0.0]), 0)
    torch.testing.assert_close(logits.grad[0], (p0 - torch.tensor([0.2, 0.8, 0.0])) / 2)
    full = multi_task_loss(logits, deltas, labels, targets, quality=torch.ones(2))
    assert full.cls.item() == pytest.approx(hard.cls.item(), rel=1e-6)  # q = 1 is the paper's target
