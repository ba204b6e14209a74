"""A deterministic synthetic detection dataset in VOC layout: coloured shapes on textured backgrounds.

Three classes, ``circle``, ``square`` and ``triangle`` (sorted, so labels 1, 2, 3), in saturated
colours on low-saturation textures (noise, stripes, gradients), so a test can find every shape by
its saturation. Shapes never overlap (with a margin), so each box is exactly the tight box of the
pixels drawn for it. Images are PNG (lossless, so boxes stay exact and files are byte-identical for
one seed). The same arguments always write the same files.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
_MIN_SATURATION = 150  # shapes: max(rgb) - min(rgb) >= this
_MAX_BACKGROUND_SATURATION = 40  # background textures stay below this


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A grey-ish texture: gradient + stripes + noise, with a faint colour tint (saturation < 40)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(60, 190)
    angle = rng.uniform(0, np.pi)
    gradient = rng.uniform(-40, 40) * ((xx * np.cos(angle) + yy * np.sin(angle)) / max(width, height))
    period = rng.uniform(6, 24)
    stripes = rng.uniform(0, 20) * np.sin(2 * np.pi * (xx * np.sin(angle) - yy * np.cos(angle)) / period)
    noise = rng.normal(0, 8, size=(height, width)).astype(np.float32)
    gray = base + gradient + stripes + noise
    tint = rng.uniform(-12, 12, size=3).astype(np.float32)
    rgb = np.clip(gray[:, :, None] + tint[None, None, :], 0, 255).astype(np.uint8)
    return rgb


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated colour: one channel high, one low, one anywhere."""
    high, low = int(rng.integers(200, 256)), int(rng.integers(0, 40))
    mid = int(rng.integers(0, 256))
    order = rng.permutation(3)
    channels = [0, 0, 0]
    channels[order[0]], channels[order[1]], channels[order[2]] = high, low, mid
    return channels[0], channels[1], channels[2]


def _shape_mask(kind: str, cx: float, cy: float, size: float, width: int, height: int) -> np.ndarray:
    """bool [H, W]: the pixels PIL draws for one shape (drawn alone, so the box can be read from it)."""
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    half = size / 2
    if kind == "circle":
        draw.ellipse([cx - half, cy - half, cx + half, cy + half], fill=1)
    elif kind == "square":
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=1)
    else:
        draw.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=1)
    return np.asarray(canvas, dtype=bool)


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Continuous [x1, y1, x2, y2] of the set pixels: pixel columns c0..c1 cover x in [c0, c1 + 1)."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _voc_xml(image_id: str, filename: str, width: int, height: int, objects: list[tuple[str, tuple]]) -> str:
    parts = [
        "<annotation>",
        "  <folder>JPEGImages</folder>",
        f"  <filename>{escape(filename)}</filename>",
        "  <source><database>rcnn-cli synthetic shapes</database></source>",
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
        "  <segmented>0</segmented>",
    ]
    for name, (x1, y1, x2, y2) in objects:
        # Ours [x1, x2) continuous -> VOC 1-based inclusive xmin = x1 + 1, xmax = x2.
        parts += [
            "  <object>",
            f"    <name>{name}</name>",
            "    <pose>Unspecified</pose>",
            "    <truncated>0</truncated>",
            "    <difficult>0</difficult>",
            "    <bndbox>",
            f"      <xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>",
            "    </bndbox>",
            "  </object>",
        ]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def _place_shapes(rng, width, height, max_objects, min_size, max_size):
    """Non-overlapping shapes (boxes at least 2 px apart), each fully inside the image."""
    wanted = int(rng.integers(1, max_objects + 1))
    placed: list[tuple[str, np.ndarray, tuple[int, int, int, int]]] = []
    for _attempt in range(wanted * 30):
        if len(placed) == wanted:
            break
        kind = SHAPES[int(rng.integers(len(SHAPES)))]
        size = float(rng.uniform(min_size, max_size))
        half = size / 2
        cx = float(rng.uniform(half + 1, width - half - 2))
        cy = float(rng.uniform(half + 1, height - half - 2))
        mask = _shape_mask(kind, cx, cy, size, width, height)
        if not mask.any():
            continue
        box = _tight_box(mask)
        if any(
            box[0] < b[2] + 2 and b[0] < box[2] + 2 and box[1] < b[3] + 2 and b[1] < box[3] + 2
            for _, _, b in placed
        ):
            continue
        placed.append((kind, mask, box))
    return placed


def make_synthetic_voc(
    root: str | os.PathLike[str],
    num_images: int = 24,
    *,
    image_size: tuple[int, int] = (160, 120),
    seed: int = 0,
    max_objects: int = 4,
    min_size: int = 16,
    max_size: int | None = None,
    val_fraction: float = 0.25,
    test_fraction: float = 0.25,
) -> Path:
    """Write ``num_images`` synthetic images in VOC layout under ``root`` and return ``root``.

    ``image_size``: (width, height). Splits in ``ImageSets/Main``: train, val, test and
    trainval = train + val (every split non-empty when ``num_images >= 3``). Every image has
    1..``max_objects`` shapes of side/diameter ``min_size..max_size`` (default: half the shorter side).
    """
    width, height = image_size
    if num_images < 1:
        raise ValueError("num_images must be at least 1")
    max_size = max_size if max_size is not None else min(width, height) // 2
    if not 4 <= min_size <= max_size <= min(width, height) - 4:
        raise ValueError(f"shape sizes {min_size}..{max_size} do not fit a {width}x{height} image")
    root = Path(root)
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"{number:06d}" for number in range(1, num_images + 1)]
    for image_id in ids:
        pixels = _background(rng, width, height)
        objects = []
        for kind, mask, box in _place_shapes(rng, width, height, max_objects, min_size, max_size):
            pixels[mask] = _colour(rng)
            objects.append((kind, box))
        filename = f"{image_id}.png"
        Image.fromarray(pixels).save(root / "JPEGImages" / filename, format="PNG", optimize=False)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            _voc_xml(image_id, filename, width, height, objects), encoding="utf-8"
        )
    order = [ids[i] for i in rng.permutation(num_images)]
    n_test = max(1, round(num_images * test_fraction)) if num_images >= 3 else 0
    n_val = max(1, round(num_images * val_fraction)) if num_images >= 3 else 0
    splits = {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }
    splits["trainval"] = sorted(splits["train"] + splits["val"])
    for name, members in splits.items():
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in members))
    return root
