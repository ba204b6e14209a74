"""Distillation after truncated SVD: teach the factorized fc layers to answer as the original model did.

Truncated SVD (paper §3.1) keeps the directions of W with the largest singular values, which is the best
approximation *of the weights*. What detection needs is the best approximation of the head's *outputs*
on the RoIs it will see. On a small head trained from scratch (our 512-wide CPU recipe) the two differ:
at the paper's fractions (fc6 1/4, fc7 1/16 of their widths) the plain factorization loses 3.6 mAP
points on BCCD (docs/BENCHMARKS.md). So, starting from the SVD factors, the factorized layers are
trained for a few thousand small steps to reproduce the original model (the teacher) on RoIs of the
user's own images — knowledge distillation (Hinton et al., 2015) applied to low-rank compression in the
spirit of the data-reconstruction fine-tuning of Jaderberg et al. (2014). No labels are needed:
images and proposals suffice, and everything but the factorized layers stays as it was.

The RoI bank: for each calibration image, the RoI-pooled features of up to ``rois_per_image`` proposals
(half of them the proposals the teacher scores as most object-like, the rest drawn at random, because
mAP is decided on the former while the latter are most of what the head sees), with the teacher's class
logits and box deltas. Features are pooled once: the backbone and the pooling do not change, so each
step costs only the fc layers.

The loss per RoI, with teacher probabilities p (K+1) and deltas t_c, and the student's q and s_c:

    KL(p || q)  +  Σ_{c ≥ 1} p_c · ||(s_c − t_c) / σ_c||²

σ_c [4] is the spread of the teacher's class-c deltas (weighted by p_c), so that the four coordinates
and all classes count alike; weighting by p_c asks for the boxes of the classes the teacher sees there.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rcnn_cli.data.images import DEFAULT_MAX_PIXELS
from rcnn_cli.errors import RcnnError
from rcnn_cli.models.heads import fc_layers

if TYPE_CHECKING:
    from rcnn_cli.inference.detect import Detector

#: A teacher probability above this marks a RoI as object-like for the bank's "hot" half.
HOT_SCORE = 0.01


@dataclass(frozen=True)
class DistillConfig:
    """Calibration images and optimization; the defaults took ~1 min on 2 CPU cores for the small head."""

    images: int = 150
    rois_per_image: int = 256
    steps: int = 2000
    batch_size: int = 1024
    lr: float = 3e-4
    seed: int = 0
    #: Upper bound on the pooled features kept in memory; fewer RoIs per image are taken above it.
    max_bank_mib: int = 2048

    def __post_init__(self) -> None:
        if self.images < 1 or self.steps < 1:
            raise RcnnError("--distill-images and --distill-steps must be >= 1")


@dataclass
class RoiBank:
    """The teacher on the calibration RoIs. n RoIs, D = C·B pooled features, K+1 classes.

    pooled: Tensor[n, D]; logits: Tensor[n, K+1]; deltas: Tensor[n, K+1, 4] (raw, as the checkpoint's
    ``bbox_pred`` outputs them); images: how many images the RoIs came from.
    """

    pooled: Tensor
    logits: Tensor
    deltas: Tensor
    images: int

    def __len__(self) -> int:
        return len(self.pooled)

    def batch(self, index: Tensor | slice, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """(pooled, logits, deltas) of the RoIs ``index``, on ``device``."""
        return tuple(t[index].to(device) for t in (self.pooled, self.logits, self.deltas))  # type: ignore[return-value]

    def delta_scale(self) -> Tensor:
        """σ: Tensor[K+1, 4], the p_c-weighted standard deviation of the teacher's class-c deltas."""
        p = self.logits.double().softmax(1)
        w = p / p.sum(0, keepdim=True).clamp_min(1e-12)  # [n, K+1]
        d = self.deltas.double()
        mean = (w[:, :, None] * d).sum(0)
        var = (w[:, :, None] * (d - mean).square()).sum(0)
        return var.sqrt().clamp_min(1e-4).float()


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


def distillation_loss(
    logits: Tensor, deltas: Tensor, teacher_logits: Tensor, teacher_deltas: Tensor, scale: Tensor
) -> tuple[Tensor, Tensor]:
    """(KL term, box term), each a mean over the R RoIs (module docstring).

    logits/teacher_logits: Tensor[R, K+1]; deltas/teacher_deltas: Tensor[R, K+1, 4]; scale σ: [K+1, 4].
    """
    kl = F.kl_div(
        F.log_softmax(logits, 1), F.log_softmax(teacher_logits, 1), log_target=True, reduction="batchmean"
    )
    p = teacher_logits.softmax(1)[:, 1:, None]  # background has no box
    err = ((deltas - teacher_deltas) / scale)[:, 1:]
    box = (p * err.square()).sum((1, 2)).mean()
    return kl, box


def _head_outputs(model: nn.Module, pooled: Tensor) -> tuple[Tensor, Tensor]:
    """pooled: Tensor[R, D] -> (logits [R, K+1], deltas [R, K+1, 4]); no dropout (test-time head)."""
    x = fc_layers(pooled, model.fc6, model.fc7, nn.Identity())
    logits = model.cls_score(x)
    return logits, model.bbox_pred(x).view(len(pooled), logits.shape[1], 4)


def collect_rois(
    teacher: Detector,
    images: Iterable[tuple[np.ndarray, np.ndarray]],
    config: DistillConfig = DistillConfig(),
    log: Callable[[str], None] = lambda _m: None,
) -> RoiBank:
    """Pool the calibration RoIs of ``images`` ((rgb uint8 [H, W, 3], proposals [R, 4]) pairs) with the
    teacher's preprocessing, and record the teacher's outputs on them (module docstring)."""
    model = teacher.model
    generator = torch.Generator().manual_seed(config.seed)
    per_image = config.rois_per_image
    pooled, logits, deltas = [], [], []
    count = 0
    with torch.inference_mode():
        for rgb, proposals in images:
            height, width = rgb.shape[:2]
            boxes = teacher.clean_proposals(proposals, height, width)
            if len(boxes) == 0:
                continue
            image, rois = teacher.network_inputs(rgb, boxes)
            features = model.pool(model.features(image), rois).flatten(1)
            if count == 0:  # the bank's size is known after the first image: keep it within budget
                row_bytes = features.shape[1] * features.element_size()
                fit = int(config.max_bank_mib * 2**20 / max(row_bytes * config.images, 1))
                if fit < per_image:
                    per_image = max(fit, 8)
                    log(f"distill: {per_image} RoIs per image (bank within {config.max_bank_mib} MiB)")
            out_logits, out_deltas = _head_outputs(model, features)
            chosen = _choose_rois(out_logits, per_image, generator)
            pooled.append(features[chosen].float().cpu())
            logits.append(out_logits[chosen].float().cpu())
            deltas.append(out_deltas[chosen].float().cpu())
            count += 1
    if count == 0:
        raise RcnnError("distillation found no image with proposals to learn from")
    return RoiBank(torch.cat(pooled), torch.cat(logits), torch.cat(deltas), count)


def _choose_rois(logits: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """Indices of up to ``count`` RoIs: the most object-like (fg probability > HOT_SCORE), at most half
    of ``count``, then a random draw from the others."""
    fg = logits.softmax(1)[:, 1:].amax(1).cpu()
    order = fg.argsort(descending=True)
    top = order[: count // 2]
    hot = top[fg[top] > HOT_SCORE]
    rest = order[len(hot) :]
    drawn = rest[torch.randperm(len(rest), generator=generator)[: count - len(hot)]]
    return torch.cat([hot, drawn]).to(logits.device)


@torch.no_grad()
def _measure(model: nn.Module, bank: RoiBank, scale: Tensor, chunk: int = 4096) -> tuple[float, float, float]:
    """(KL, box term, top-1 agreement) of ``model`` against the teacher over the whole bank."""
    device = scale.device
    kl = box = agree = 0.0
    for start in range(0, len(bank), chunk):
        pooled, t_logits, t_deltas = bank.batch(slice(start, start + chunk), device)
        logits, deltas = _head_outputs(model, pooled)
        k, b = distillation_loss(logits, deltas, t_logits, t_deltas, scale)
        n = len(logits)
        kl += float(k) * n
        box += float(b) * n
        agree += float((logits.argmax(1) == t_logits.argmax(1)).sum())
    n = max(len(bank), 1)
    return kl / n, box / n, agree / n


def distill_layers(
    student: nn.Module,
    bank: RoiBank,
    layers: Sequence[str],
    config: DistillConfig = DistillConfig(),
    log: Callable[[str], None] = lambda _m: None,
) -> DistillReport:
    """Train ``student.<layer>`` for every name in ``layers`` (in place; all else frozen) towards the
    teacher outputs in ``bank``: Adam, cosine-decayed lr, ``config.steps`` batches of RoIs, on the
    student's device (the bank stays on the CPU; each batch is moved)."""
    device = next(student.parameters()).device
    params = [p for name in layers for p in getattr(student, name).parameters()]
    if not params:
        raise RcnnError(f"nothing to distill: no parameters in {', '.join(layers)}")
    scale = bank.delta_scale().to(device)
    kl0, box0, agree0 = _measure(student, bank, scale)
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
            logits, deltas = _head_outputs(student, pooled)
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
    kl1, box1, agree1 = _measure(student, bank, scale)
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


def pick_calibration(records: Sequence, count: int, seed: int = 0) -> list:
    """``count`` records spread over the list (a seeded draw, kept in dataset order)."""
    if count >= len(records):
        return list(records)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(records), generator=generator)[:count].sort().values
    return [records[int(i)] for i in chosen]


def calibration_images(
    records: Sequence, proposal_source: Callable, log: Callable[[str], None] = lambda _m: None
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(rgb, proposals) of each record, read lazily; an unreadable image or missing proposals is
    reported through ``log`` and skipped. ``proposal_source``: a :data:`detect.ProposalSource`."""
    from rcnn_cli.data import read_record
    from rcnn_cli.errors import DataError

    for record in records:
        try:
            rgb = read_record(record)
            yield rgb, proposal_source(record, rgb)
        except DataError as exc:
            log(f"skipped: {exc}")


def open_calibration(
    spec: str,
    split: str | None,
    proposal_source: Callable,
    config: DistillConfig,
    warn: Callable[[str], None],
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """The (rgb, proposals) pairs to distill on: up to ``config.images`` images of dataset ``spec``
    (:func:`pick_calibration`), read lazily. Whatever the loader or the reading skips is reported
    through ``warn``; a dataset without images is an error. ``max_pixels``: the decoding limit."""
    from rcnn_cli.data import open_dataset

    dataset = open_dataset(spec, split, max_pixels=max_pixels)
    for problem in dataset.problems:
        warn(f"skipped: {problem}")
    if not dataset.records:
        raise RcnnError(f"{spec}: no images to distill on" + (f" in split {split}" if split else ""))
    records = pick_calibration(dataset.records, config.images, config.seed)
    return calibration_images(records, proposal_source, warn)


def teacher_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of the original model, taken before its layers are factorized."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
