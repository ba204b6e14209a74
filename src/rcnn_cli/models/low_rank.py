"""The low-rank structure of the fc layers after truncated SVD (Fast R-CNN §3.1), as the model sees it.

A factorized layer is ``nn.Sequential(Linear(v -> t, no bias), Linear(t -> u))`` in place of the
``Linear(v -> u)`` it replaces; checkpoints record the ranks t (``svd_ranks``) and rebuild the structure
from them before loading the weights. How the factors are computed is :mod:`rcnn_cli.inference.truncated_svd`.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from rcnn_cli.errors import RcnnError

FC_LAYERS = ("fc6", "fc7")


def max_rank(linear: nn.Linear) -> int:
    return min(linear.out_features, linear.in_features)


def check_rank(name: str, linear: nn.Linear, rank: int) -> None:
    if not isinstance(linear, nn.Linear):
        raise RcnnError(
            f"{name} is {type(linear).__name__}, not a fully connected layer; already factorized?"
        )
    if rank < 1 or rank > max_rank(linear):
        raise RcnnError(
            f"SVD rank {rank} for {name} ({linear.out_features}x{linear.in_features}) is out of range: "
            f"choose 1..{max_rank(linear)}"
        )


def low_rank_shell(linear: nn.Linear, rank: int, name: str = "layer") -> nn.Sequential:
    """An untrained factorized layer shaped like ``linear`` (rank t) for a compressed state_dict."""
    check_rank(name, linear, rank)
    w = linear.weight
    return nn.Sequential(
        nn.Linear(linear.in_features, rank, bias=False, device=w.device, dtype=w.dtype),
        nn.Linear(rank, linear.out_features, bias=linear.bias is not None, device=w.device, dtype=w.dtype),
    )


def apply_low_rank_structure(head: nn.Module, ranks: Mapping[str, int]) -> None:
    """Give ``head`` (a FastRCNNHead, or any module with fc6/fc7) the factorized layers a checkpoint's
    ``svd_ranks`` describe (weights come after)."""
    for name, rank in ranks.items():
        layer = getattr(head, name, None)
        if layer is None:
            raise RcnnError(f"the checkpoint factorizes {name!r}, which this model does not have")
        setattr(head, name, low_rank_shell(layer, int(rank), name))


def svd_ranks_of(head: nn.Module) -> dict[str, int]:
    """{"fc6": t} for each fc layer of ``head`` that is a truncated-SVD pair
    Sequential(Linear(v->t), Linear(t->u))."""
    ranks: dict[str, int] = {}
    for name in FC_LAYERS:
        layer = getattr(head, name, None)  # a res5 head (ResNet C4) has no fc layers
        if isinstance(layer, nn.Sequential):
            ranks[name] = int(layer[0].out_features)
    return ranks
