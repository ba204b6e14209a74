"""--lambda-start: the box loss's λ falls linearly from it to --lambda at the first lr step, and the
training step weighs each iteration's box loss with that iteration's λ (and gives its classifier the
RoIs' IoUs as targets only with --cls-target iou)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.fast_rcnn import FastRCNN, default_config
from rcnn_cli.models.losses import multi_task_loss
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.distributed import DistInfo
from rcnn_cli.training.solver import box_loss_weight
from rcnn_cli.training.step import IterationStep


def test_lambda_falls_linearly_from_the_start_to_lambda_at_the_first_lr_step() -> None:
    cfg = TrainConfig(iters=100, lr_steps=(40, 80), lam=1.0, lam_start=3.0)
    # 3 - 2 * it / 40, by hand: 0 -> 3, 10 -> 2.5, 20 -> 2, 30 -> 1.5, 39 -> 1.05; then 1.
    expected = {0: 3.0, 10: 2.5, 20: 2.0, 30: 1.5, 39: 1.05, 40: 1.0, 79: 1.0, 99: 1.0}
    assert {it: box_loss_weight(cfg, it) for it in expected} == pytest.approx(expected)


def test_without_a_start_lambda_is_constant_and_without_lr_steps_it_falls_over_the_whole_run() -> None:
    constant = TrainConfig(iters=100, lr_steps=(40,), lam=2.0)
    assert [box_loss_weight(constant, it) for it in (0, 39, 40, 99)] == [2.0, 2.0, 2.0, 2.0]
    whole = TrainConfig(iters=50, lr_steps=(), lam=0.5, lam_start=1.5)
    assert [box_loss_weight(whole, it) for it in (0, 25, 50)] == pytest.approx([1.5, 1.0, 0.5])
    rising = TrainConfig(iters=10, lr_steps=(10,), lam=2.0, lam_start=0.0)  # a start below λ rises
    assert box_loss_weight(rising, 5) == pytest.approx(1.0)


def test_a_negative_start_is_one_error_naming_the_option() -> None:
    with pytest.raises(RcnnError, match=r"^--lambda-start must be >= 0, got -1.0$"):
        TrainConfig(lam_start=-1.0)


def test_the_training_step_weighs_the_box_loss_with_its_iterations_lambda() -> None:
    torch.manual_seed(0)
    model = FastRCNN(default_config("small", 2, fc6_dim=16, fc7_dim=16))
    cfg = TrainConfig(iters=100, lr=0.001, lr_steps=(40,), lam=1.0, lam_start=3.0)
    source = SimpleNamespace(uses_features=False)  # the step only asks what its inputs are
    step = IterationStep(model, cfg, source, DistInfo(), torch.device("cpu"))  # type: ignore[arg-type]
    logits, deltas = torch.randn(6, 3), torch.randn(6, 12)
    labels = torch.tensor([1, 2, 0, 0, 1, 0])
    targets = torch.randn(6, 4)
    for iteration, lam in ((0, 3.0), (20, 2.0), (40, 1.0)):
        parts = step.head_loss(logits, deltas, labels, targets, 6, iteration, ious=torch.rand(6))
        assert float(parts.total) == pytest.approx(float(parts.cls + lam * parts.loc))
        assert float(parts.loc) > 0  # so λ is seen in the total


def test_the_head_loss_takes_iou_targets_only_with_cls_target_iou() -> None:
    model = FastRCNN(default_config("small", 2, fc6_dim=16, fc7_dim=16))
    source = SimpleNamespace(uses_features=False)
    logits = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.5]])
    deltas, targets = torch.zeros(2, 12), torch.zeros(2, 4)
    labels, ious = torch.tensor([1, 0]), torch.tensor([0.6, 0.1])
    hard = multi_task_loss(logits, deltas, labels, targets, normalizer=2)
    soft = multi_task_loss(logits, deltas, labels, targets, normalizer=2, quality=ious)
    assert soft.cls.item() != pytest.approx(hard.cls.item())
    for cls_target, expected in (("hard", hard), ("iou", soft)):
        config = TrainConfig(lr=0.001, cls_target=cls_target)
        step = IterationStep(model, config, source, DistInfo(), torch.device("cpu"))  # type: ignore[arg-type]
        parts = step.head_loss(logits, deltas, labels, targets, 2, 0, ious)
        assert parts.cls.item() == pytest.approx(expected.cls.item())
