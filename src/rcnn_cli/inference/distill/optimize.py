"""The optimization: Adam on the factorized layers of a head, towards the teacher outputs of a bank.

Only the layers named (fc6, fc7 after truncated SVD) learn; the rest of the head is frozen for the run
and its trainability restored after. A report measures the whole bank before and after.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.distill.bank import RoiBank, head_outputs
from rcnn_cli.inference.distill.config import DistillConfig
from rcnn_cli.inference.distill.loss import distillation_loss, measure
from rcnn_cli.models.heads import FastRCNNHead


@dataclass(frozen=True)
class DistillReport:
    """What distillation did; ``*_before`` is the plain SVD, ``*_after`` the distilled layers.

    kl: mean KL(teacher || student) of the class distributions; box: the weighted box term of the loss;
    agreement: fraction of bank RoIs whose top class is the teacher's; all over the whole bank.
    """

    images: int
    rois: int
    steps: int
    seconds: float
    kl_before: float
    kl_after: float
    box_before: float
    box_after: float
    agreement_before: float
    agreement_after: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def distill_layers(
    student: FastRCNNHead,
    bank: RoiBank,
    layers: Sequence[str],
    config: DistillConfig = DistillConfig(),
    log: Callable[[str], None] = lambda _m: None,
) -> DistillReport:
    """Train ``student.<layer>`` (``student``: a model's head) for every name in ``layers`` (in place;
    all else frozen) towards the teacher outputs in ``bank``: Adam, cosine-decayed lr, ``config.steps``
    batches of RoIs, on the student's device (the bank stays on the CPU; each batch is moved)."""
    device = next(student.parameters()).device
    params = [p for name in layers for p in getattr(student, name).parameters()]
    if not params:
        raise RcnnError(f"nothing to distill: no parameters in {', '.join(layers)}")
    scale = bank.delta_scale().to(device)
    kl0, box0, agree0 = measure(student, bank, scale)
    trainable = {p: p.requires_grad for p in student.parameters()}
    for p in student.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(config.steps, 1))
    generator = torch.Generator().manual_seed(config.seed)
    batch_size = min(config.batch_size, len(bank))
    every = max(config.steps // 4, 1)
    start = time.perf_counter()
    try:
        for step in range(config.steps):
            pooled, t_logits, t_deltas = bank.batch(
                torch.randint(len(bank), (batch_size,), generator=generator), device
            )
            logits, deltas = head_outputs(student, pooled)
            kl, box = distillation_loss(logits, deltas, t_logits, t_deltas, scale)
            loss = kl + box
            value = float(loss.detach())
            if not math.isfinite(value):
                raise RcnnError(f"distillation diverged at step {step} (loss {value}); try a lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if (step + 1) % every == 0:
                log(f"distill: step {step + 1}/{config.steps}  loss {value:.5f}")
    finally:
        for p, flag in trainable.items():
            p.requires_grad_(flag)
    seconds = time.perf_counter() - start
    kl1, box1, agree1 = measure(student, bank, scale)
    return DistillReport(
        images=bank.images,
        rois=len(bank),
        steps=config.steps,
        seconds=seconds,
        kl_before=kl0,
        kl_after=kl1,
        box_before=box0,
        box_after=box1,
        agreement_before=agree0,
        agreement_after=agree1,
    )


def teacher_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of the original model, taken before its layers are factorized."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
