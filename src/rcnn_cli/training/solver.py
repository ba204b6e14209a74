"""The solver: SGD with the paper's settings (or AdamW) and the step learning-rate schedule."""

from __future__ import annotations

import torch
from torch import nn

from rcnn_cli.training.config import TrainConfig


def lr_lambda(config: TrainConfig):
    """Iteration -> lr multiplier: ×lr_gamma at each of lr_steps, after a linear warm-up."""

    def factor(it: int) -> float:
        f = config.lr_gamma ** sum(it >= s for s in config.lr_steps)
        if config.warmup_iters and it < config.warmup_iters:
            f *= (it + 1) / config.warmup_iters
        return f

    return factor


def box_loss_weight(config: TrainConfig, iteration: int) -> float:
    """λ of the box loss at ``iteration`` (0-based): ``lam_start`` at 0, falling linearly to ``lam``
    at the first lr step (at ``iters`` without one), ``lam`` from there on; ``lam`` throughout when
    ``lam_start`` is None.

    Why a start above λ: trained from scratch, the shared layers first serve the classifier, and the
    box regressor can sit at the loss of predicting the mean target for half the run; a heavier box
    loss early was meant to give it their gradient sooner, λ back at 1 later leaving the classifier its
    share. Measured on the raccoon photos (docs/BENCHMARKS.md, issue 18, "Another machine") a start of
    2 did not shorten that plateau, so it is off by default.
    """
    if config.lam_start is None:
        return config.lam
    end = config.lr_steps[0] if config.lr_steps else config.iters
    if iteration >= end:
        return config.lam
    return config.lam_start + (config.lam - config.lam_start) * iteration / end


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum 0.9, weight decay 0.0005) as the paper; biases get 2x lr and no decay, as the
    released solver does. Frozen parameters are left out."""
    weights = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    others = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": weights, "lr": config.lr, "weight_decay": config.weight_decay},
        {"params": others, "lr": 2 * config.lr, "weight_decay": 0.0},
    ]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)  # "sgd" (TrainConfig checks)
