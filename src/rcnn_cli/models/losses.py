"""The multi-task loss (Fast R-CNN §2.3, eq. 1):

    L(p, u, t^u, v) = L_cls(p, u) + λ [u ≥ 1] L_loc(t^u, v)

with L_cls = −log p_u and L_loc = Σ_{i ∈ {x,y,w,h}} smooth_L1(t^u_i − v_i) (eq. 2, 3). Both terms are
summed over the minibatch's RoIs and divided by R, the number of RoIs, as the released code does.
Shapes: R RoIs, K object classes (K+1 with background).

With ``quality`` (``rcnn train --cls-target iou``), L_cls of a foreground RoI is the cross-entropy
against a soft target instead of −log p_u: probability q on class u and 1 − q on background, where q is
the RoI's IoU with its ground-truth box. The hard target teaches p_u ≈ 1 for an RoI at IoU 0.5 and for
one at 0.95 alike, so at test time the score does not say which of two overlapping boxes is tighter;
the soft target makes p_u track localization quality, the idea of the quality-focal target of
Generalized Focal Loss (Li et al., 2020), here on the softmax of Fast R-CNN. Background RoIs keep the
hard target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rcnn_cli.boxes import smooth_l1

__all__ = ["LossParts", "classification_target", "multi_task_loss", "smooth_l1"]


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
    quality: Tensor | None = None,
) -> LossParts:
    """class_logits Tensor[R, K+1], box_deltas Tensor[R, 4(K+1)], labels u Tensor[R], targets v Tensor[R, 4].

    t^u is the 4-vector of ``box_deltas`` for class u; background RoIs (u = 0) have no box loss.
    ``normalizer`` defaults to R; pass the whole minibatch's R when the RoIs of one minibatch are fed
    image by image. ``cls_only`` drops L_loc (the paper's "no multi-task" ablation, Table 5).
    ``quality`` Tensor[R] in [0, 1], each RoI's IoU with its ground truth: foreground RoIs get the
    soft classification target of the module docstring (None: the paper's hard target).
    """
    num = class_logits.shape[0]
    denom = float(normalizer if normalizer is not None else max(num, 1))
    fg = torch.nonzero(labels > 0).flatten()
    cls_target = classification_target(class_logits, labels, quality)
    loss_cls = F.cross_entropy(class_logits, cls_target, reduction="sum") / denom
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


def classification_target(class_logits: Tensor, labels: Tensor, quality: Tensor | None) -> Tensor:
    """What L_cls compares the softmax with: the labels u Tensor[R] themselves (the hard target), or with
    ``quality`` Tensor[R] the distributions Tensor[R, K+1] of the module docstring (q on u, 1 − q on
    background for a foreground RoI; one-hot on background for a background RoI)."""
    if quality is None:
        return labels
    target = F.one_hot(labels, class_logits.shape[1]).to(class_logits.dtype)
    fg = labels > 0
    q = quality.to(target).clamp(0.0, 1.0)[fg]
    target[fg] = target[fg] * q[:, None]
    target[fg, 0] = 1.0 - q
    return target
