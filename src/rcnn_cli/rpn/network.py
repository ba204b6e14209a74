"""The region proposal network as one module (Faster R-CNN §3.1): the head slid over a feature map,
its anchors, the proposal layer and the loss, put together for a backbone of a given stride.

What is part of the *model* (stored with it: anchors, head width, the test-time proposal layer) is
:class:`RPNConfig`; how it is *trained* (anchor labelling and sampling, the training proposal layer)
belongs to the training config and is passed in. Shapes: N images, C channels, H'×W' feature cells,
k anchors per cell, A = H'·W'·k anchors per image, G gt boxes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.rpn.anchor_targets import AnchorTargetConfig, anchor_targets
from rcnn_cli.rpn.anchors import AnchorConfig, anchors
from rcnn_cli.rpn.head import RPNHead
from rcnn_cli.rpn.loss import encode_targets, rpn_loss
from rcnn_cli.rpn.proposal_layer import ProposalLayerConfig, propose_boxes


def default_mid_channels(in_channels: int) -> int:
    """The 3×3 conv's width: the paper's 512 for VGG16 (512-channel conv5), and the backbone's own width
    below that (256 for ZF, as the paper; 128 for ``small``), so the head never widens a thin backbone."""
    return min(512, int(in_channels))


@dataclass(frozen=True)
class RPNConfig:
    """The RPN part of a model config: anchor shapes, the head's width, test-time proposal numbers."""

    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    mid_channels: int = 512
    proposals: ProposalLayerConfig = field(default_factory=ProposalLayerConfig.for_testing)

    def __post_init__(self) -> None:
        if isinstance(self.mid_channels, bool) or not isinstance(self.mid_channels, int):
            raise RcnnError(f"rpn mid_channels {self.mid_channels!r}: expected an integer")
        if self.mid_channels < 1:
            raise RcnnError(f"rpn mid_channels must be >= 1, got {self.mid_channels}")

    @classmethod
    def for_backbone(cls, backbone: str, in_channels: int, **overrides: Any) -> RPNConfig:
        """The default for ``backbone``: its anchors (:meth:`AnchorConfig.for_backbone`), a head as wide
        as :func:`default_mid_channels`; ``overrides`` (None: not given) on top."""
        base = cls(
            anchors=AnchorConfig.for_backbone(backbone), mid_channels=default_mid_channels(in_channels)
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**base.__dict__, **given})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RPNConfig:
        """The inverse of :meth:`to_dict` (a config read from a file: every part checked)."""
        if not isinstance(data, dict):
            raise RcnnError(f"rpn config {data!r}: expected a mapping")
        try:
            anchor = data.get("anchors") or {}
            layer = data.get("proposals") or {}
            return cls(
                anchors=AnchorConfig(tuple(anchor["scales"]), tuple(anchor["ratios"])),
                mid_channels=data["mid_channels"],
                proposals=ProposalLayerConfig(**layer),
            )
        except (KeyError, TypeError) as exc:
            raise RcnnError(f"rpn config is incomplete or malformed ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class RPNOutput:
    """The RPN's raw outputs on N images: ``objectness`` Tensor[N, A] logits, ``deltas`` Tensor[N, A, 4],
    and the ``anchors`` Tensor[A, 4] they refer to (xyxy pixels of the scaled image)."""

    objectness: Tensor
    deltas: Tensor
    anchors: Tensor


@dataclass(frozen=True)
class RPNLoss:
    """total = cls + λ·reg (0-dim Tensors) over the sampled anchors, which number ``sampled`` with
    ``positives`` among them; ``accuracy``: the share of sampled anchors whose objectness sign is right."""

    total: Tensor
    cls: Tensor
    reg: Tensor
    accuracy: float
    positives: int
    sampled: int


class RegionProposalNetwork(nn.Module):
    """:class:`RPNHead` on a backbone of stride ``stride`` with the anchors of ``config``.

    The only parameters are the head's (``head.conv``, ``head.objectness``, ``head.bbox_deltas``).
    """

    def __init__(self, in_channels: int, stride: int, config: RPNConfig) -> None:
        super().__init__()
        self.config = config
        self.stride = int(stride)
        self.head = RPNHead(in_channels, config.anchors.num_anchors, config.mid_channels)

    def forward(self, features: Tensor) -> RPNOutput:
        """features Tensor[N, C, H', W'] -> the objectness, deltas and anchors of its cells."""
        objectness, deltas = self.head(features)
        grid = anchors(
            (features.shape[-2], features.shape[-1]),
            self.stride,
            self.config.anchors.scales,
            self.config.anchors.ratios,
            device=features.device,
        )
        return RPNOutput(objectness, deltas, grid)

    def set_test_proposals(self, **fields: Any) -> None:
        """Change the stored test-time proposal layer's ``fields`` (ProposalLayerConfig names; checked
        as the config is rebuilt), e.g. ``post_nms_top_n=2000`` for a command's ``--rpn-*`` options."""
        if fields:
            layer = dataclasses.replace(self.config.proposals, **fields)
            self.config = dataclasses.replace(self.config, proposals=layer)

    def proposals(
        self,
        output: RPNOutput,
        image_sizes: Sequence[tuple[int, int]],
        layer: ProposalLayerConfig | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        """N (boxes Tensor[P_i, 4], scores Tensor[P_i]) in scaled-image pixels, best first; ``layer``: the
        model's test-time numbers by default (training passes its own). No gradient flows through."""
        return propose_boxes(
            output.anchors,
            output.objectness.detach(),
            output.deltas.detach(),
            image_sizes,
            layer or self.config.proposals,
        )

    def loss(
        self,
        output: RPNOutput,
        gt_boxes: Sequence[Tensor],
        image_sizes: Sequence[tuple[int, int]],
        targets: AnchorTargetConfig,
        generator: torch.Generator | None = None,
        lam: float = 1.0,
    ) -> RPNLoss:
        """The loss over the N images' sampled anchors; ``gt_boxes``: N Tensor[G_i, 4] in scaled-image
        pixels. Normalized by all the images' sampled anchors together (rpn_loss's default)."""
        labels, target_deltas = [], []
        for i, gt in enumerate(gt_boxes):
            lab, matched = anchor_targets(
                output.anchors, gt.to(output.anchors), image_sizes[i], targets, generator
            )
            labels.append(lab)
            target_deltas.append(encode_targets(output.anchors, matched))
        label = torch.stack(labels)
        total, cls, reg = rpn_loss(
            output.objectness, output.deltas, label, torch.stack(target_deltas), lam=lam
        )
        sampled = label >= 0
        with torch.no_grad():
            right = ((output.objectness > 0).long() == label) & sampled
        count = int(sampled.sum())
        return RPNLoss(total, cls, reg, float(right.sum()) / max(count, 1), int((label == 1).sum()), count)
