"""What ``rcnn show pooling`` pools: the RoI to show and the feature map it is pooled from, a trained
model's conv features (one channel) or, without a model, a stand-in of the image's darkness per cell,
on the backbone's real H'×W' grid either way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.errors import RcnnError
from rcnn_cli.ops.pool_geometry import roi_pool_bins
from rcnn_cli.pictures.network_view import NetworkView


@dataclass(frozen=True)
class FeatureSource:
    """The feature map of one image: ``view`` (backbone, stride, scale), the model ``config`` whose
    pooling settings apply (:class:`rcnn_cli.models.ModelConfig`), the scaled image uint8 [h, w, 3],
    ``im_scale`` (scaled / original pixels), and ``features`` Tensor[C, H', W']."""

    view: NetworkView
    config: Any
    image: np.ndarray
    im_scale: float
    features: Tensor
    name: str


def stand_in_features(rgb: np.ndarray, backbone: str) -> FeatureSource:
    """The image as ``backbone`` reads it by default, with :func:`darkness_map` on its feature grid."""
    from rcnn_cli.models import default_config

    view = NetworkView.for_backbone(backbone)
    image, im_scale = view.resize(rgb)
    size = view.feature_size(image.shape[0], image.shape[1])
    features = darkness_map(image, view.stride, size)[None]
    config = default_config(backbone, num_classes=1)
    return FeatureSource(
        view, config, image, im_scale, features, "stand-in: darkness of each cell, yellow = darkest"
    )


def model_features(rgb: np.ndarray, model: Path, device: Any) -> FeatureSource:
    """A trained model's conv feature map Tensor[C, H', W'] of the image, read as the model reads it."""
    from rcnn_cli.models import load_checkpoint
    from rcnn_cli.models.preprocess import prepare_image

    net, meta = load_checkpoint(model, device)
    config = meta["config"]
    view = NetworkView.for_model(config)
    image, im_scale = view.resize(rgb)
    tensor, _ = prepare_image(rgb, view.scale, view.max_size, config.pixel_mean, config.pixel_std)
    with torch.inference_mode():
        features = net.features(tensor[None].to(device))[0].float().cpu()
    return FeatureSource(view, config, image, im_scale, features, f"conv features of {model.name}")


def darkness_map(rgb: np.ndarray, stride: int, map_size: tuple[int, int]) -> Tensor:
    """A stand-in feature map when no trained model is given: Tensor[H', W'] float32, each cell the mean
    darkness (1 − brightness, 0..1) of its s×s pixels, so that a bin's maximum is its darkest (most
    stained, in a blood smear) patch. Cells past the image edge repeat the edge pixels."""
    height, width = map_size
    gray = rgb.astype(np.float32).mean(axis=2) / 255.0
    pad_h = max(height * stride - gray.shape[0], 0)
    pad_w = max(width * stride - gray.shape[1], 0)
    gray = np.pad(gray, ((0, pad_h), (0, pad_w)), mode="edge")[: height * stride, : width * stride]
    cells = gray.reshape(height, stride, width, stride).mean(axis=(1, 3))
    return torch.from_numpy(1.0 - cells).float()


def default_box(gt_boxes: np.ndarray, width: int, height: int, stride: int, output_size: int) -> np.ndarray:
    """float32 [4]: the RoI to show when none is given, in the same pixels as ``gt_boxes`` [G, 4] and the
    image's ``width`` × ``height``: the gt box closest to 1.5 · ``output_size`` cells a side (in the
    image's own pixels, so a first guess), where bins of 1 or 2 cells show how they overlap; without
    boxes, the middle third of the image."""
    boxes = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.array([width / 3, height / 3, 2 * width / 3, 2 * height / 3], dtype=np.float32)
    sides = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) / stride
    return boxes[int(np.argmin(np.abs(np.log(sides / (1.5 * output_size)))))]


def pick_channel(features: Tensor, box: Sequence[float], stride: int, channel: int | None) -> int:
    """The channel of ``features`` Tensor[C, H', W'] to show: ``channel``, or the one most active
    (highest mean) inside the RoI's rounded window, where the pooling looks."""
    count = features.shape[0]
    if channel is not None:
        if not 0 <= channel < count:
            raise RcnnError(f"--channel {channel}: the feature map has channels 0..{count - 1}")
        return channel
    bins = roi_pool_bins(box, 1, 1.0 / stride, (features.shape[1], features.shape[2]))
    h0, h1, w0, w1 = bins.cells(0, 0)
    if h1 <= h0 or w1 <= w0:
        raise RcnnError(f"the RoI {tuple(round(v) for v in box)} lies outside the feature map")
    return int(features[:, h0:h1, w0:w1].mean(dim=(1, 2)).argmax())
