"""Photometric jitter: random brightness, contrast and saturation of a training image.

The boxes stay where they are (only the pixel values change), so this is augmentation that cannot put a
box in the wrong place. It is drawn per image from the trainer's seeded generator, after the scale and
the flip, so a resumed run sees what the uninterrupted one would have; with ``strength`` 0 nothing is
drawn and the random stream is that of a run without it.

Each factor is drawn uniformly in ``[1 - strength, 1 + strength]`` (torchvision's ``ColorJitter``
convention); brightness scales the pixels, contrast moves them away from or towards the image's mean
grey, saturation away from or towards each pixel's own grey (ITU-R 601 luma).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: ITU-R BT.601 luma weights of R, G, B: the grey a colour is compared with.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class ColorJitter:
    """Multiplicative factors (1 = unchanged) applied in this order: brightness, contrast, saturation."""

    brightness: float
    contrast: float
    saturation: float

    @classmethod
    def draw(cls, strength: float, generator: torch.Generator) -> ColorJitter | None:
        """Three factors in ``[1 - strength, 1 + strength]``; None (and no draw) when ``strength`` is 0."""
        if strength <= 0:
            return None
        u = torch.rand(3, generator=generator, dtype=torch.float64)
        b, c, s = (1.0 + strength * (2.0 * u - 1.0)).tolist()
        return cls(brightness=b, contrast=c, saturation=s)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] -> uint8 [H, W, 3] with the three factors applied, clipped to [0, 255]."""
        x = rgb.astype(np.float32) * self.brightness
        np.clip(x, 0.0, 255.0, out=x)
        grey = x @ LUMA  # [H, W]
        x = (x - grey.mean()) * self.contrast + grey.mean()
        np.clip(x, 0.0, 255.0, out=x)
        grey = (x @ LUMA)[..., None]
        x = (x - grey) * self.saturation + grey
        return np.clip(x + 0.5, 0.0, 255.0).astype(np.uint8)
