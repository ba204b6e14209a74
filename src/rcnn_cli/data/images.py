"""Robust image reading: any mode Pillow opens becomes uint8 RGB [H, W, 3], EXIF orientation applied.

Every failure is a :class:`DataError` naming the file: missing, empty, not an image, truncated,
or above the pixel limit. The size is checked from the header *before* decoding so that a
huge image is refused without allocating its pixels.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rcnn_cli.errors import DataError
from rcnn_cli.limits import DEFAULT_MAX_PIXELS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")

# EXIF orientations 5..8 rotate by 90 degrees: width and height swap.
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION_TAG = 0x0112


def _open(path: Path) -> Image.Image:
    """Open lazily (header only) with clear errors."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the name
        raise DataError(path, "no such image file") from None
    except OSError as exc:  # a name too long, no permission ...
        raise DataError(path, f"cannot open image: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(path, "is a folder, not an image file")
    if info.st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # We apply our own pixel limit; Pillow's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise DataError(path, f"image too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise DataError(path, "not an image, or a format Pillow cannot read") from None
    except OSError as exc:
        raise DataError(path, f"cannot open image: {exc}") from None


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a corrupt EXIF block must not make the image unreadable
        return 1


def _check_pixels(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise DataError(
            path,
            f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels, above the limit of "
            f"{max_pixels / 1e6:g} megapixels (raise it with --max-pixels)",
        )


def image_size(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header only (no decoding)."""
    path = Path(path)
    with _open(path) as image:
        width, height = image.size
        if _orientation(image) in _TRANSPOSED_ORIENTATIONS:
            width, height = height, width
    _check_pixels(path, width, height, max_pixels)
    return width, height


def raw_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) as stored, ignoring EXIF orientation (to explain a size mismatch)."""
    with _open(Path(path)) as image:
        return image.size


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit (or 32-bit integer) grayscale: keep the top 8 bits of a 16-bit range.
        values = np.asarray(image, dtype=np.int64)
        if mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values.clip(0, 65535) // 257
        gray = values.clip(0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        if values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        gray = values.round().clip(0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    # L, 1, P, LA, PA, RGBA, CMYK, YCbCr, LAB, HSV, RGB: Pillow converts; alpha is dropped.
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as uint8 RGB ``[H, W, 3]`` with its EXIF orientation applied.

    Grayscale, palette, RGBA/LA (alpha dropped), 16-bit and CMYK images are converted.
    Raises :class:`DataError` naming the file when it is missing, empty, not an image,
    truncated or corrupt, or larger than ``max_pixels`` (None: no limit).
    """
    path = Path(path)
    with _open(path) as image:
        width, height = image.size
        _check_pixels(path, width, height, max_pixels)
        try:
            image.load()
            oriented = ImageOps.exif_transpose(image)
            rgb = _to_rgb(oriented)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(path, f"cannot decode image (truncated or corrupt): {exc}") from None
    return np.ascontiguousarray(rgb)


def read_record(record: Any) -> np.ndarray:
    """:func:`read_image` of a dataset record, under the pixel limit its loader admitted it with
    (``record.max_pixels``, so that ``--max-pixels`` holds from loading to decoding; a record-like
    object without one gets the default limit)."""
    return read_image(record.path, max_pixels=getattr(record, "max_pixels", DEFAULT_MAX_PIXELS))
