"""Faster R-CNN (Ren et al., NeurIPS 2015): Fast R-CNN whose proposals come from a region proposal
network on the same conv feature map (§3), so that detection needs nothing but the image.

The network is a :class:`rcnn_cli.models.fast_rcnn.FastRCNN` (backbone + per-RoI head, same state-dict
keys) plus ``rpn`` (:class:`rcnn_cli.rpn.network.RegionProposalNetwork`, keys ``rpn.head.*``). Its
``ModelConfig.rpn`` holds the anchors and the test-time proposal layer. Shapes: N images, P proposals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from torch import Tensor

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.fast_rcnn import FastRCNN, ModelConfig
from rcnn_cli.rpn.network import RegionProposalNetwork, RPNConfig, RPNOutput
from rcnn_cli.rpn.proposal_layer import ProposalLayerConfig


class FasterRCNN(FastRCNN):
    """Backbone, RPN and Fast R-CNN head; ``config.rpn`` must be set."""

    def __init__(self, config: ModelConfig) -> None:
        if config.rpn is None:
            raise RcnnError("a Faster R-CNN model config needs its rpn part")
        super().__init__(config)
        self.rpn = RegionProposalNetwork(self.backbone.out_channels, self.backbone.stride, config.rpn)

    def rpn_outputs(self, features: Tensor) -> RPNOutput:
        """features Tensor[N, C, H', W'] -> the RPN's objectness, deltas and anchors."""
        return self.rpn(features)

    def propose(
        self,
        features: Tensor,
        image_sizes: Sequence[tuple[int, int]],
        layer: ProposalLayerConfig | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        """N (boxes Tensor[P_i, 4], objectness Tensor[P_i]) in pixels of the scaled images whose
        (height, width) are ``image_sizes``, best first; the model's test-time numbers unless ``layer``."""
        return self.rpn.proposals(self.rpn(features), image_sizes, layer)


def with_rpn(config: ModelConfig, **rpn_options: Any) -> ModelConfig:
    """``config`` with the default RPN of its backbone, ``rpn_options`` (None: not given) on top."""
    from rcnn_cli.models.specs import SPECS

    spec = SPECS[config.backbone]
    return replace(config, rpn=RPNConfig.for_backbone(config.backbone, spec.out_channels, **rpn_options))


def build_model(config: ModelConfig) -> FastRCNN:
    """The network a config describes: a :class:`FasterRCNN` when it has an RPN, an
    :class:`rcnn_cli.models.rcnn.RCNN` for the rcnn and sppnet methods, else a FastRCNN."""
    if config.method != "fast_rcnn":
        from rcnn_cli.models.rcnn import RCNN

        return RCNN(config)
    return FasterRCNN(config) if config.rpn is not None else FastRCNN(config)
