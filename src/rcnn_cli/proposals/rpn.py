"""Proposals from a trained region proposal network (``rcnn propose --method rpn --model RUN/model.pt``).

The model is a Faster R-CNN (``rcnn train --rpn``) or an RPN trained alone (``--rpn-only``); only its
conv layers and RPN run. Its test-time proposal layer decides how many boxes come out (300 by default;
``--rpn-post-nms-top-n 2000`` for more), each with its objectness as the score, best first, in pixels
of the original image. The network is loaded on first use, so that the method can be sent to worker
processes as a file name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.errors import ArtifactError
from rcnn_cli.proposals.base import Proposals, finalize_boxes


@dataclass
class RPNProposals:
    """``model``: the model file; ``layer``: ProposalLayerConfig fields to set instead of the model's;
    ``device``: where the network runs (a torch device string)."""

    model: str
    layer: dict[str, Any] = field(default_factory=dict)
    max_proposals: int = 2000
    min_size: float = 0.0
    device: str = "cpu"
    name: str = field(default="rpn", init=False)
    needs_image: bool = field(default=True, init=False)
    _network: Any = field(default=None, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_network": None}  # workers load their own copy

    def _load(self) -> Any:
        if self._network is None:
            from rcnn_cli.models.checkpoint import load_checkpoint

            net, _meta = load_checkpoint(self.model, self.device)
            if getattr(net, "rpn", None) is None:
                raise ArtifactError(
                    f"{self.model}: a Fast R-CNN without an RPN (train one: rcnn train --rpn or --rpn-only)"
                )
            net.rpn.set_test_proposals(**self.layer)
            self._network = net
        return self._network

    def params(self) -> dict[str, Any]:
        from rcnn_cli.artifacts import file_digest

        net = self._load()
        config = net.config
        return {
            "model": file_digest(Path(self.model)),
            "proposal_layer": dataclasses.asdict(net.rpn.config.proposals),
            "scale": int(config.scales[0]),
            "max_size": int(config.max_size),
            "max_proposals": self.max_proposals,
            "min_size": self.min_size,
        }

    def propose(self, image: np.ndarray | None, record: Any) -> Proposals:
        """image: uint8 [H, W, 3] -> boxes float32 [P, 4] in original pixels and objectness [P]."""
        import torch

        from rcnn_cli.models.preprocess import prepare_image

        assert image is not None  # needs_image
        net = self._load()
        cfg = net.config
        with torch.inference_mode():
            blob, im_scale = prepare_image(image, cfg.scales[0], cfg.max_size, cfg.pixel_mean, cfg.pixel_std)
            blob = blob.to(self.device)[None]
            size = (int(blob.shape[-2]), int(blob.shape[-1]))
            boxes, scores = net.propose(net.features(blob), [size])[0]
        height, width = image.shape[:2]
        return finalize_boxes(
            (boxes / im_scale).cpu().numpy(),
            scores.cpu().numpy(),
            width,
            height,
            self.min_size,
            self.max_proposals,
        )
