"""Write a large photo-like JPEG (default 8000 x 6000 = 48 megapixels) for the memory benchmark of
``rcnn propose`` on huge images (docs/BENCHMARKS.md, "Large images").

The picture is a smooth colour gradient with a few hundred flat rectangles and some noise, so that
Selective Search finds real regions at every scale rather than one flat area or pure noise.

    python bench/large_image.py /tmp/big/photo.jpg --width 8000 --height 6000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def large_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """uint8 RGB [height, width, 3], built band by band so that making it stays within ~0.5 GB."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)
    for top in range(0, height, 500):
        rows = slice(top, min(top + 500, height))
        ys = np.linspace(top / height, rows.stop / height, rows.stop - top, dtype=np.float32)[:, None]
        band = np.stack([120 + 100 * xs + 0 * ys, 60 + 150 * ys + 0 * xs, 200 - 80 * xs * ys], axis=2)
        band += rng.normal(0, 6, band.shape).astype(np.float32)
        image[rows] = band.clip(0, 255).astype(np.uint8)
    for _ in range(300):
        w, h = rng.integers(width // 50, width // 6), rng.integers(height // 50, height // 6)
        x, y = rng.integers(0, width - w), rng.integers(0, height - h)
        image[y : y + h, x : x + w] = rng.integers(0, 256, 3, dtype=np.uint8)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--width", type=int, default=8000)
    parser.add_argument("--height", type=int, default=6000)
    args = parser.parse_args()
    args.path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(large_image(args.width, args.height)).save(args.path, quality=90)
    print(f"wrote {args.path} ({args.width}x{args.height} = {args.width * args.height / 1e6:g} MP)")


if __name__ == "__main__":
    main()
