"""Image preprocessing for the detector: rescale (shorter side ``scale``, longer ≤ ``max_size``), normalize.

Boxes in original pixels are multiplied by the returned ``im_scale`` before pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from rcnn_cli.models.fast_rcnn import IMAGENET_MEAN, IMAGENET_STD


def image_scale_factor(height: int, width: int, scale: int, max_size: int) -> float:
    """The factor that makes the shorter side ``scale`` unless the longer side would pass ``max_size``."""
    factor = scale / min(height, width)
    if round(factor * max(height, width)) > max_size:
        factor = max_size / max(height, width)
    return float(factor)


def prepare_image(
    rgb: np.ndarray,
    scale: int = 600,
    max_size: int = 1000,
    pixel_mean: Sequence[float] = IMAGENET_MEAN,
    pixel_std: Sequence[float] = IMAGENET_STD,
    flip: bool = False,
) -> tuple[Tensor, float]:
    """rgb: uint8 [H, W, 3] -> (Tensor[3, h, w] float32 normalized, im_scale).

    ``flip`` mirrors the image horizontally (training augmentation; boxes use ``flip_boxes``).
    """
    height, width = rgb.shape[:2]
    im_scale = image_scale_factor(height, width, scale, max_size)
    if flip:
        rgb = rgb[:, ::-1]
    resized = cv2.resize(
        np.ascontiguousarray(rgb), None, fx=im_scale, fy=im_scale, interpolation=cv2.INTER_LINEAR
    )
    return normalize_image(resized, pixel_mean, pixel_std), im_scale


def normalize_image(
    rgb: np.ndarray,
    pixel_mean: Sequence[float] = IMAGENET_MEAN,
    pixel_std: Sequence[float] = IMAGENET_STD,
    flip: bool = False,
) -> Tensor:
    """rgb: uint8 [H, W, 3] -> Tensor[3, H, W] float32 normalized, at its own size (R-CNN warps its
    regions from the original image); mirrored when ``flip``."""
    if flip:
        rgb = rgb[:, ::-1]
    # np.require copies only what torch.from_numpy cannot share: a view with strides (the flip)
    # or a read-only buffer (a decoded cache, a memory map), which torch warns about.
    x = torch.from_numpy(np.require(rgb, requirements=["C", "W"])).permute(2, 0, 1)
    x = x.float().div_(255.0)
    mean = torch.tensor(pixel_mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(pixel_std, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


def images_to_blob(images: Sequence[Tensor]) -> Tensor:
    """list of Tensor[3, h_i, w_i] -> Tensor[N, 3, max h, max w], zero-padded at the bottom/right.

    Zero after normalization is the mean pixel, as in the original implementation.
    """
    height = max(im.shape[1] for im in images)
    width = max(im.shape[2] for im in images)
    blob = images[0].new_zeros((len(images), 3, height, width))
    for i, im in enumerate(images):
        blob[i, :, : im.shape[1], : im.shape[2]] = im
    return blob
