"""Truncated SVD of fully connected layers (Fast R-CNN §3.1, "Truncated SVD for faster detection").

A layer y = W x + b with W of size u × v is factorized as W ≈ U_t Σ_t V_tᵀ, keeping the t largest
singular values. It becomes two layers without a non-linearity between them:

    Linear(v -> t, no bias) with weight Σ_t V_tᵀ   [t, v]
    Linear(t -> u)          with weight U_t, bias b [u, t]

so the parameter count goes from u·v to t·(u + v). The paper takes fc6 to t = 1024 and fc7 to t = 256 for
VGG16 (u = 4096): more than 30% less detection time for a 0.3 point mAP drop. The relative reconstruction
error ||W - U_t Σ_t V_tᵀ||_F / ||W||_F = sqrt(Σ_{i>t} σ_i²) / sqrt(Σ_i σ_i²) tells how much is lost.

A factorized layer is an ``nn.Sequential(Linear, Linear)``: its state_dict keys are ``fc6.0.weight``,
``fc6.1.weight``, ``fc6.1.bias``; :mod:`rcnn_cli.models.low_rank` rebuilds that structure from the
ranks a checkpoint records, before loading its weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.low_rank import FC_LAYERS, check_rank, low_rank_shell, max_rank

#: The paper's ranks as fractions of each layer's width: VGG16's fc6 and fc7 (4096) at t = 1024 and 256.
PAPER_DIVISORS: dict[str, int] = {"fc6": 4, "fc7": 16}


def check_fc_head(head: nn.Module) -> None:
    """Refuse, in one line, a head without fc6/fc7: the C4 head (ResNet's res5, MobileNetV3's last
    blocks) is convolutions and a global average; its only fully connected layers, cls_score and
    bbox_pred, have K+1 and 4(K+1) outputs, too few for a low-rank factorization to save anything."""
    if not all(isinstance(getattr(head, name, None), nn.Module) for name in FC_LAYERS):
        raise RcnnError(
            "truncated SVD factorizes fc6 and fc7, and this model has none: its per-RoI head is its "
            "backbone's last conv stage (ResNet's res5), whose only fc layers (cls_score, bbox_pred) are "
            "too small to gain from it"
        )


def fraction_ranks(head: nn.Module, divisors: Mapping[str, int] = PAPER_DIVISORS) -> dict[str, int]:
    """{layer: its width // divisor (at least 1)}, the width being the layer's highest rank min(u, v):
    the paper's setting on any head by default (fc6 = 128, fc7 = 32 for the small backbone's 512)."""
    check_fc_head(head)
    ranks = {}
    for name, divisor in divisors.items():
        layer = getattr(head, name, None)
        check_rank(name, layer, 1)  # a Linear layer (not factorized already)
        ranks[name] = max(1, max_rank(layer) // divisor)
    return ranks


@dataclass(frozen=True)
class SvdLayerReport:
    """What factorizing one layer did. ``params_*`` count weights and biases."""

    name: str
    shape: tuple[int, int]  # (u, v) of the original weight
    rank: int
    params_before: int
    params_after: int
    relative_error: float


def _top_singular_factors(W: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_t V_tᵀ [t, v], U_t [u, t]) of W [u, v] in float64.

    For u <= v (fc6: 4096 x 25088) the left singular vectors are the eigenvectors of the u x u Gram
    matrix W Wᵀ = U Σ² Uᵀ, and Σ_t V_tᵀ = U_tᵀ W exactly: one matrix product and a u x u eigh, several
    times cheaper than a full SVD of the wide matrix. Otherwise (v small) the SVD itself is cheap.
    """
    W = W.double()
    u, v = W.shape
    if u <= v:
        _, Q = torch.linalg.eigh(W @ W.T)  # eigenvalues ascending
        U_t = Q[:, -rank:].flip(1)
        return U_t.T @ W, U_t
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)  # U [u, r], S [r], Vh [r, v]
    return S[:rank, None] * Vh[:rank], U[:, :rank]


def truncated_svd(linear: nn.Linear, rank: int, name: str = "layer") -> tuple[nn.Sequential, float]:
    """Factorize ``linear`` (weight W [u, v], bias b [u]) at rank ``rank`` = t.

    Returns ``(nn.Sequential(Linear(v, t, bias=False), Linear(t, u)), relative_error)``. The factors are
    computed in float64 so that they are as exact as the original dtype allows; the new layers have the
    original dtype and device.
    """
    factorized = low_rank_shell(linear, rank, name)
    first, second = factorized
    W = linear.weight.detach()
    sigma_vt, U_t = _top_singular_factors(W, rank)
    with torch.no_grad():
        first.weight.copy_(sigma_vt)  # Σ_t V_tᵀ  [t, v]
        second.weight.copy_(U_t)  # U_t  [u, t]
        if linear.bias is not None:
            second.bias.copy_(linear.bias.detach())
    # U_t has orthonormal columns, so ||W - U_t Σ_t V_tᵀ||² = ||W||² - ||Σ_t V_tᵀ||² (Pythagoras).
    total = float(W.double().square().sum())
    kept = float(sigma_vt.square().sum())
    error = math.sqrt(max(total - kept, 0.0) / total) if total > 0 else 0.0
    return factorized, error


def reconstruction_error(original: nn.Linear, factorized: nn.Sequential) -> float:
    """||W - W₂ W₁||_F / ||W||_F of a factorized layer against the layer it replaced (any factors, e.g.
    after distillation, not only the SVD's)."""
    W = original.weight.detach().double()
    approx = factorized[1].weight.detach().double() @ factorized[0].weight.detach().double()
    total = float(torch.linalg.matrix_norm(W))
    return float(torch.linalg.matrix_norm(W - approx)) / total if total > 0 else 0.0


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def compress_layers(head: nn.Module, ranks: Mapping[str, int]) -> list[SvdLayerReport]:
    """Replace ``head.<name>`` by its truncated SVD for every ``name -> t`` in ``ranks``, in place;
    ``head`` is a model's FastRCNNHead (``model.head``) or any module with such fc layers.

    All ranks are checked before any layer changes, so a bad rank leaves the head untouched.
    """
    check_fc_head(head)
    layers = {}
    for name, rank in ranks.items():
        layer = getattr(head, name, None)
        if layer is None:
            raise RcnnError(f"the model has no layer {name!r} to factorize (it has {', '.join(FC_LAYERS)})")
        check_rank(name, layer, rank)
        layers[name] = layer
    reports = []
    for name, rank in ranks.items():
        layer = layers[name]
        factorized, error = truncated_svd(layer, rank, name)
        setattr(head, name, factorized)
        reports.append(
            SvdLayerReport(
                name=name,
                shape=(layer.out_features, layer.in_features),
                rank=rank,
                params_before=_params(layer),
                params_after=_params(factorized),
                relative_error=error,
            )
        )
    return reports
