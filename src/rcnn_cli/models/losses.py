"""The multi-task loss (Fast R-CNN §2.3, eq. 1):

    L(p, u, t^u, v) = L_cls(p, u) + λ [u ≥ 1] L_loc(t^u, v)

with L_cls = −log p_u and L_loc = Σ_{i ∈ {x,y,w,h}} smooth_L1(t^u_i − v_i) (eq. 2, 3). Both terms are
summed over the minibatch's RoIs and divided by R, the number of RoIs, as the released code does.
Shapes: R RoIs, K object classes (K+1 with background).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rcnn_cli.boxes import smooth_l1

__all__ = ["LossParts", "multi_task_loss", "smooth_l1"]


@dataclass(frozen=True)
class LossParts:
    """total = cls + λ·loc (each a 0-dim Tensor), plus the head's accuracy on the RoIs (a float)."""

    total: Tensor
    cls: Tensor
    loc: Tensor
    accuracy: float


def multi_task_loss(
    class_logits: Tensor,
    box_deltas: Tensor,
    labels: Tensor,
    targets: Tensor,
    lam: float = 1.0,
    cls_only: bool = False,
    normalizer: float | None = None,
) -> LossParts:
    """class_logits Tensor[R, K+1], box_deltas Tensor[R, 4(K+1)], labels u Tensor[R], targets v Tensor[R, 4].

    t^u is the 4-vector of ``box_deltas`` for class u; background RoIs (u = 0) have no box loss.
    ``normalizer`` defaults to R; pass the whole minibatch's R when the RoIs of one minibatch are fed
    image by image. ``cls_only`` drops L_loc (the paper's "no multi-task" ablation, Table 5).
    """
    num = class_logits.shape[0]
    denom = float(normalizer if normalizer is not None else max(num, 1))
    loss_cls = F.cross_entropy(class_logits, labels, reduction="sum") / denom
    fg = torch.nonzero(labels > 0).flatten()
    if cls_only or fg.numel() == 0:
        loss_loc = class_logits.new_zeros(())
        if not cls_only:
            loss_loc = loss_loc + 0.0 * box_deltas.sum()  # keep bbox_pred in the graph (DDP)
    else:
        deltas = box_deltas.reshape(num, -1, 4)[fg, labels[fg]]  # t^u: Tensor[F, 4]
        loss_loc = smooth_l1(deltas - targets[fg]).sum() / denom
    total = loss_cls + lam * loss_loc
    with torch.no_grad():
        correct = (class_logits.argmax(1) == labels).sum().item()
    return LossParts(total, loss_cls, loss_loc, correct / max(num, 1))
