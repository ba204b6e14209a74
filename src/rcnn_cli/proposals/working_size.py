"""The working size of the proposal methods whose cost grows with the pixel count.

Selective Search (ours, the ``selectivesearch`` package, OpenCV's) segments and groups every pixel:
a 48-megapixel photo took 8 GB and minutes. It was designed for, and its parameters (the
segmentation threshold k is a region size in pixels) were tuned on, PASCAL VOC images of about
500 x 375 (0.2 MP); Fast R-CNN itself looks at images of at most 1000 x 600 (0.6 MP). So a larger
image is segmented at :data:`DEFAULT_WORKING_PIXELS` and its boxes are scaled back to the original
pixels: finer boxes than that would be lost on the detector's input anyway. Images at or below the
working size are processed as they are (bit-identical to running without a working size).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_WORKING_PIXELS = 1_000_000
"""Segment images larger than 1 megapixel (e.g. 1155 x 866 for 4:3) at this size."""


def working_image(image: np.ndarray, working_pixels: int | None) -> tuple[np.ndarray, float, float]:
    """``image`` (uint8 [H, W, C]) shrunk to at most ``working_pixels`` pixels, aspect ratio kept.

    Returns (image [h, w, C], sx, sy) with ``sx = W / w`` and ``sy = H / h``: a box ``x1, y1, x2, y2``
    in the small image's continuous pixels is ``x1 * sx, y1 * sy, x2 * sx, y2 * sy`` in the original.
    An image within the limit (or ``working_pixels`` None) comes back as it is with scales 1.
    """
    height, width = image.shape[:2]
    if working_pixels is None or height * width <= working_pixels:
        return image, 1.0, 1.0
    import cv2

    factor = math.sqrt(working_pixels / (height * width))
    small_w, small_h = max(1, int(width * factor)), max(1, int(height * factor))
    # INTER_AREA averages the pixels each output pixel covers: no aliasing, unlike nearest/linear.
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    return small.reshape(small_h, small_w, *image.shape[2:]), width / small_w, height / small_h


def to_original(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """float32 boxes [N, 4] xyxy in working-image pixels -> in original pixels (unchanged at scale 1)."""
    if sx == 1.0 and sy == 1.0:
        return boxes
    return (boxes * np.array([sx, sy, sx, sy], dtype=np.float64)).astype(np.float32)
