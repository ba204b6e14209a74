"""Dense sliding windows: the paper's data-independent baseline (Uijlings et al., section 5.1).

Square-ish windows of several sizes and aspect ratios on a regular grid with half-window
strides; the grid is shuffled (seeded) before ``max_proposals`` are kept, so that every
scale is represented rather than only the first ones listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rcnn_cli.proposals.base import Proposals, finalize_boxes

if TYPE_CHECKING:
    from rcnn_cli.data import ImageRecord


def sliding_windows(
    width: int, height: int, sizes: tuple[int, ...], ratios: tuple[float, ...], stride_fraction: float
) -> np.ndarray:
    """All windows [M, 4] xyxy: area size^2, height/width = ratio, stride = fraction of the window side."""
    out = []
    for size in sizes:
        for ratio in ratios:
            w = size / np.sqrt(ratio)
            h = size * np.sqrt(ratio)
            if w > width * 1.5 or h > height * 1.5:
                continue
            xs = np.arange(0.0, max(width - w, 0.0) + 1e-6, max(w * stride_fraction, 1.0))
            ys = np.arange(0.0, max(height - h, 0.0) + 1e-6, max(h * stride_fraction, 1.0))
            gx, gy = np.meshgrid(xs, ys)
            x1, y1 = gx.reshape(-1), gy.reshape(-1)
            out.append(np.stack([x1, y1, x1 + w, y1 + h], axis=1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 4), np.float32)


@dataclass(frozen=True)
class DenseWindows:
    """``rcnn propose --method dense``."""

    sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    stride_fraction: float = 0.5
    max_proposals: int = 2000
    min_size: float = 0.0
    seed: int = 0
    name: str = field(default="dense", init=False)
    needs_image: bool = field(default=False, init=False)

    def params(self) -> dict[str, Any]:
        return {
            "sizes": list(self.sizes),
            "ratios": list(self.ratios),
            "stride_fraction": self.stride_fraction,
            "max_proposals": self.max_proposals,
            "min_size": self.min_size,
            "seed": self.seed,
        }

    def propose(self, image: np.ndarray | None, record: ImageRecord) -> Proposals:
        if image is not None:
            height, width = image.shape[:2]
        else:
            width, height = record.width, record.height
        boxes = sliding_windows(width, height, self.sizes, self.ratios, self.stride_fraction)
        boxes = boxes[np.random.default_rng(self.seed).permutation(len(boxes))]
        # No ranking of their own: scores just keep the shuffled order.
        scores = np.linspace(1.0, 0.0, len(boxes), dtype=np.float32)
        return finalize_boxes(boxes, scores, width, height, self.min_size, self.max_proposals)
