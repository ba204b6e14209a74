"""The RPN loss (Faster R-CNN §3.1.2, eq. 1):

    L({p_i}, {t_i}) = 1/N_cls Σ_i L_cls(p_i, p_i*) + λ · 1/N_reg Σ_i p_i* L_reg(t_i, t_i*)

over the sampled anchors i, with L_cls the binary log loss of the objectness logit and L_reg the smooth
L1 loss of the box deltas, counted on positives only (p_i* = 1).

**Normalization.** The paper divides the first term by N_cls = 256 (the minibatch) and the second by
N_reg ≈ 2400 (the anchor locations) with λ = 10, which roughly balances the two. The released code and
torchvision instead divide both by the number of sampled anchors with λ = 1; the paper finds its
results insensitive to λ over a wide range (Table 9) and notes that its normalization is not required.
We take the latter by default, ``normalizer = None`` (the sampled anchors of the whole batch) and
``lam = 1``: it needs no knowledge of the feature map's size, so the two terms keep the same weights
for any image size, and it is the form whose training behaviour is best known. The paper's form
(λ = 10, the terms divided by 256 and 2400) is ``normalizer=256`` and ``lam=10 * 256 / 2400``.

Box targets t* are :func:`encode_targets` of the matched gt boxes: the (dx, dy, dw, dh) of
:class:`rcnn_cli.boxes.BoxCoder` with means 0 and stds 1 (:data:`RPN_BOX_CODER`).
Shapes: N images, A anchors per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rcnn_cli.boxes import BoxCoder, smooth_l1

#: The RPN's box parametrisation: plain (dx, dy, dw, dh), not normalized.
RPN_BOX_CODER = BoxCoder(means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0))


def encode_targets(anchors: Tensor, matched_gt: Tensor) -> Tensor:
    """Regression targets ``Tensor[A, 4]`` moving ``anchors[A, 4]`` onto ``matched_gt[A, 4]``."""
    return RPN_BOX_CODER.encode(anchors, matched_gt)


def rpn_loss(
    objectness: Tensor,
    deltas: Tensor,
    labels: Tensor,
    target_deltas: Tensor,
    lam: float = 1.0,
    normalizer: float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(total, cls, reg) 0-dim Tensors; total = cls + λ·reg.

    Args:
        objectness: ``Tensor[N, A]`` or ``Tensor[A]`` logits (:class:`rcnn_cli.rpn.head.RPNHead`).
        deltas: ``Tensor[N, A, 4]`` or ``Tensor[A, 4]`` predicted box deltas.
        labels: ``Tensor[N, A]`` / ``Tensor[A]`` int64 in {1, 0, -1}; -1 are left out.
        target_deltas: like ``deltas``, the encoded targets (read on positives only).
        lam: λ, the weight of the box term.
        normalizer: divides both sums; the number of sampled anchors (labels ≥ 0) by default.
    """
    scores = objectness.reshape(-1)
    lab = labels.reshape(-1)
    pred = deltas.reshape(-1, 4)
    target = target_deltas.reshape(-1, 4).to(pred.dtype)
    sampled = torch.where(lab >= 0)[0]
    positive = torch.where(lab == 1)[0]
    denom = float(normalizer if normalizer is not None else max(sampled.numel(), 1))
    cls = (
        F.binary_cross_entropy_with_logits(scores[sampled], lab[sampled].to(scores.dtype), reduction="sum")
        / denom
    )
    reg = smooth_l1(pred[positive] - target[positive]).sum() / denom
    if positive.numel() == 0:
        reg = reg + 0.0 * pred.sum()  # keep the box branch in the graph
    return cls + lam * reg, cls, reg
