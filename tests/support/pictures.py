"""What the picture tests share: the PNG check and the bundled sample (60 BCCD photos, VOC layout)."""

from __future__ import annotations

import struct
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_picture(path: Path, min_side: int = 500, max_side: int = 2600) -> None:
    """A real, decodable PNG of a size one can look at, with something drawn on it (not one flat colour),
    and no temporary left beside it (written atomically)."""
    from PIL import Image

    width, height = png_size(path)
    assert min_side <= min(width, height) and max(width, height) <= max_side, (width, height)
    with Image.open(path) as image:
        image.load()
        low, high = image.convert("L").getextrema()
    assert high - low > 100
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp.png")]


def sample_path() -> Path:
    from rcnn_cli.data import sample_dataset_path

    return Path(sample_dataset_path())
