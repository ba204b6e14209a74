"""The image as a network reads it: rescaled (shorter side ``scale``, longer ≤ ``max_size``, Fast R-CNN
§2.3) and seen by a backbone of stride s, whose H'×W' feature map has one cell per s×s pixels.

The settings come from a trained model's config when a picture is given ``--model``, else from the
backbone's defaults (:func:`rcnn_cli.models.default_config`), so the picture shows what that model sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from rcnn_cli.models.preprocess import image_scale_factor
from rcnn_cli.models.specs import SPECS


@dataclass(frozen=True)
class NetworkView:
    """How a backbone sees images: its name, stride s (image pixels per feature cell), the test scale."""

    backbone: str
    stride: int
    scale: int
    max_size: int

    @classmethod
    def for_backbone(cls, backbone: str) -> NetworkView:
        """The backbone's default scale (600/1000, ``small``: 400/700) and its stride (models/specs.py)."""
        from rcnn_cli.models import default_config

        config = default_config(backbone, num_classes=1)
        return cls(backbone, SPECS[backbone].stride, int(config.scales[0]), int(config.max_size))

    @classmethod
    def for_model(cls, config: Any) -> NetworkView:
        """The view of a trained model: ``config`` is its :class:`rcnn_cli.models.ModelConfig`."""
        return cls(
            config.backbone, SPECS[config.backbone].stride, int(config.scales[0]), int(config.max_size)
        )

    def resize(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """rgb uint8 [H, W, 3] -> (the image the network reads, uint8 [h, w, 3]; im_scale = h / H), with
        the resize that :func:`rcnn_cli.models.preprocess.prepare_image` does."""
        height, width = rgb.shape[:2]
        im_scale = image_scale_factor(height, width, self.scale, self.max_size)
        resized = cv2.resize(
            np.ascontiguousarray(rgb), None, fx=im_scale, fy=im_scale, interpolation=cv2.INTER_LINEAR
        )
        return resized, im_scale

    def feature_size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the backbone's feature map for an h×w image: the layers run on the meta device,
        which computes shapes only (no weights, no arithmetic), so the size is the network's own
        (padding and ceil-mode pooling included), not an estimate."""
        from rcnn_cli.models.backbones import build_backbone

        with torch.device("meta"):
            backbone = build_backbone(self.backbone)
            out = backbone(torch.empty(1, 3, height, width))
        return int(out.shape[-2]), int(out.shape[-1])
