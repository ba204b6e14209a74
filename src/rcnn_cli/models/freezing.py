"""Freezing a backbone's first layers (Fast R-CNN §4.5: conv1-conv2 of VGG16 are not fine-tuned; the
C4 ResNets keep conv1 and res2): one rule for every backbone, whatever its layers are called."""

from __future__ import annotations

from torch import nn


def freeze_before(backbone: nn.Module, stages: list[nn.Module], layer: str | None) -> None:
    """Make every parameter of ``stages`` trainable, then freeze those before ``layer`` (a key of
    ``backbone.layer_index``, whose values index ``stages``); None leaves all trainable."""
    for module in stages:
        for p in module.parameters():
            p.requires_grad_(True)
    if layer is None:
        return
    if layer not in backbone.layer_index:
        from rcnn_cli.errors import RcnnError

        known = ", ".join(backbone.layer_index)
        raise RcnnError(f"backbone {backbone.name} has no layer {layer!r}; its conv layers are: {known}")
    for module in stages[: backbone.layer_index[layer]]:
        for p in module.parameters():
            p.requires_grad_(False)
