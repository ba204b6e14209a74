"""rpn_loss against a hand computation, and its gradient by finite differences."""

from __future__ import annotations

import math

import torch

from rcnn_cli.rpn.loss import encode_targets, rpn_loss


def test_tiny_case_by_hand() -> None:
    objectness = torch.tensor([[2.0, -1.0, 5.0]])  # anchor 2 is not sampled
    deltas = torch.tensor([[[0.5, -2.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0], [9.0, 9.0, 9.0, 9.0]]])
    labels = torch.tensor([[1, 0, -1]])
    targets = torch.tensor([[[0.0, 0.0, 0.25, 0.0], [0.0] * 4, [0.0] * 4]])
    total, cls, reg = rpn_loss(objectness, deltas, labels, targets, lam=1.0)
    log_loss = -math.log(1 / (1 + math.exp(-2.0))) - math.log(1 - 1 / (1 + math.exp(1.0)))
    # smooth L1 of (0.5, -2, -0.25, 0): 0.125 + 1.5 + 0.03125 + 0, on the positive only
    smooth = 0.5 * 0.25 + (2.0 - 0.5) + 0.5 * 0.0625
    assert abs(cls.item() - log_loss / 2) < 1e-6
    assert abs(reg.item() - smooth / 2) < 1e-6
    assert abs(total.item() - (log_loss + smooth) / 2) < 1e-6
    total10, _, _ = rpn_loss(objectness, deltas, labels, targets, lam=10.0, normalizer=256)
    assert abs(total10.item() - (log_loss + 10 * smooth) / 256) < 1e-6


def test_no_positives_still_reaches_the_box_branch() -> None:
    deltas = torch.ones(1, 2, 4, requires_grad=True)
    total, _, reg = rpn_loss(torch.zeros(1, 2), deltas, torch.tensor([[0, -1]]), torch.zeros(1, 2, 4))
    assert reg.item() == 0.0
    total.backward()
    assert deltas.grad is not None and torch.count_nonzero(deltas.grad) == 0


def test_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    objectness = torch.randn(2, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    # keep every |delta - target| away from the smooth L1 kink at 1
    deltas = (0.3 * torch.randn(2, 6, 4, dtype=torch.float64, generator=gen)).requires_grad_()
    labels = torch.tensor([[1, 0, -1, 1, 0, 0], [0, -1, 1, 0, -1, 1]])
    targets = torch.zeros(2, 6, 4, dtype=torch.float64)
    targets[0, 0] = torch.tensor([3.0, -3.0, 0.0, 0.0], dtype=torch.float64)  # the linear part too

    def total(o: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return rpn_loss(o, d, labels, targets, lam=2.0)[0]

    assert torch.autograd.gradcheck(total, (objectness, deltas))


def test_encode_targets_is_plain_dx_dy_dw_dh() -> None:
    anchors = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    gt = torch.tensor([[5.0, 0.0, 25.0, 20.0]])
    # centre (5, 10) -> (15, 10), width 10 -> 20: (10/10, 0, log 2, 0)
    torch.testing.assert_close(encode_targets(anchors, gt), torch.tensor([[1.0, 0.0, math.log(2.0), 0.0]]))
