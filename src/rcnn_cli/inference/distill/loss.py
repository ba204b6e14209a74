"""The distillation loss and how far a head is from the teacher over a whole RoI bank.

The loss per RoI, with teacher probabilities p (K+1) and deltas t_c, and the student's q and s_c:

    KL(p || q)  +  Σ_{c ≥ 1} p_c · ||(s_c − t_c) / σ_c||²

σ_c [4] is the spread of the teacher's class-c deltas (weighted by p_c, :meth:`RoiBank.delta_scale`),
so that the four coordinates and all classes count alike; weighting by p_c asks for the boxes of the
classes the teacher sees there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rcnn_cli.inference.distill.bank import RoiBank, head_outputs
from rcnn_cli.models.heads import FastRCNNHead


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


@torch.no_grad()
def measure(
    head: FastRCNNHead, bank: RoiBank, scale: Tensor, chunk: int = 4096
) -> tuple[float, float, float]:
    """(KL, box term, top-1 agreement) of ``head`` against the teacher, each a mean over the bank."""
    device = scale.device
    kl = box = agree = 0.0
    for start in range(0, len(bank), chunk):
        pooled, t_logits, t_deltas = bank.batch(slice(start, start + chunk), device)
        logits, deltas = head_outputs(head, pooled)
        k, b = distillation_loss(logits, deltas, t_logits, t_deltas, scale)
        n = len(logits)
        kl += float(k) * n
        box += float(b) * n
        agree += float((logits.argmax(1) == t_logits.argmax(1)).sum())
    n = max(len(bank), 1)
    return kl / n, box / n, agree / n
