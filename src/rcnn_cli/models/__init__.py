"""Fast R-CNN models: backbones (caffenet, vgg_cnn_m_1024, vgg16, small), the RoI head, checkpoints.

The names below are imported on first use, so that :mod:`rcnn_cli.models.specs` (plain data) can be
read without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "SPECS": "specs",
    "Backbone": "backbones",
    "build_backbone": "backbones",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "FastRCNN": "fast_rcnn",
    "ModelConfig": "fast_rcnn",
    "default_config": "fast_rcnn",
    "FastRCNNHead": "heads",
    "images_to_blob": "preprocess",
    "prepare_image": "preprocess",
    "load_torchvision_weights": "weights",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
