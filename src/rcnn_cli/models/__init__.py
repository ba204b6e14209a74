"""Fast R-CNN models: backbones (caffenet, vgg_cnn_m_1024, vgg16, small), the RoI head, checkpoints."""

from rcnn_cli.models.backbones import SPECS, Backbone, build_backbone
from rcnn_cli.models.checkpoint import load_checkpoint, save_checkpoint
from rcnn_cli.models.fast_rcnn import FastRCNN, ModelConfig, default_config
from rcnn_cli.models.heads import FastRCNNHead
from rcnn_cli.models.preprocess import images_to_blob, prepare_image
from rcnn_cli.models.weights import load_torchvision_weights

__all__ = [
    "SPECS",
    "Backbone",
    "FastRCNN",
    "FastRCNNHead",
    "ModelConfig",
    "build_backbone",
    "default_config",
    "images_to_blob",
    "load_checkpoint",
    "load_torchvision_weights",
    "prepare_image",
    "save_checkpoint",
]
