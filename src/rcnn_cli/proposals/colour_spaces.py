"""The colour spaces of Selective Search (Uijlings et al., IJCV 2013, section 3.4), as
uint8 images so that the kernels bin every channel the same way (25 colour bins over
0..255).

HSV uses the full 0..255 hue range; Lab is OpenCV's 8-bit Lab (L * 255 / 100,
a + 128, b + 128); rgI is normalised r and g plus intensity; H and I are single channels.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOUR_SPACES = ("hsv", "lab", "rgi", "h", "i")


def convert_colour(rgb: np.ndarray, space: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB -> uint8 [H, W, C] in ``space`` (C = 3, or 1 for ``h`` and ``i``)."""
    if space == "hsv":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)
    if space == "lab":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    if space == "h":
        return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)[:, :, :1])
    total = rgb.astype(np.float32).sum(axis=2, keepdims=True)
    intensity = (total / 3.0).round().astype(np.uint8)
    if space == "i":
        return intensity
    if space == "rgi":
        rg = rgb[:, :, :2].astype(np.float32) * 255.0 / np.maximum(total, 1.0)
        return np.concatenate([rg.round().clip(0, 255).astype(np.uint8), intensity], axis=2)
    raise ValueError(f"unknown colour space {space!r}; choose from {', '.join(COLOUR_SPACES)}")
