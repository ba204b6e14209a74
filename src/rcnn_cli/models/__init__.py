"""Fast R-CNN models: backbones (caffenet, vgg_cnn_m_1024, vgg16, small), the RoI head, checkpoints.

The names below are imported on first use, so that :mod:`rcnn_cli.models.specs` (plain data) can be
read without loading torch.
"""

from __future__ import annotations

from rcnn_cli.lazy import lazy_names

_HOMES = {
    "SPECS": "specs",
    "Backbone": "backbones",
    "build_backbone": "backbones",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "FastRCNN": "fast_rcnn",
    "FasterRCNN": "faster_rcnn",
    "build_model": "faster_rcnn",
    "ModelConfig": "fast_rcnn",
    "default_config": "fast_rcnn",
    "FastRCNNHead": "heads",
    "images_to_blob": "preprocess",
    "prepare_image": "preprocess",
    "load_torchvision_weights": "weights",
}

__getattr__, __all__ = lazy_names(__name__, _HOMES)
