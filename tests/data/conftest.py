"""Builders for small VOC folders and images written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, width: int = 64, height: int = 48, mode: str = "RGB", **save_args) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, **save_args)
    return path


def voc_xml(filename: str, width: int, height: int, objects: list[dict]) -> str:
    """objects: dicts with name, bbox (4 strings or numbers), optional difficult ('' for an empty tag)."""
    parts = [
        f"<annotation><filename>{filename}</filename>",
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
    ]
    for obj in objects:
        xmin, ymin, xmax, ymax = obj["bbox"]
        difficult = obj.get("difficult", "0")
        tag = "<difficult/>" if difficult == "" else f"<difficult>{difficult}</difficult>"
        if difficult is None:
            tag = ""
        parts.append(
            f"<object><name>{obj['name']}</name>{tag}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "".join(parts)


MakeVoc = Callable[..., Path]


@pytest.fixture
def make_voc(tmp_path: Path) -> MakeVoc:
    """make_voc({id: [objects]}, splits={'trainval': [ids]}, ext='.jpg', size=(64, 48)) -> root."""

    def build(
        images: dict[str, list[dict]],
        splits: dict[str, list[str]] | None = None,
        ext: str = ".jpg",
        size: tuple[int, int] = (64, 48),
        filenames: dict[str, str] | None = None,
    ) -> Path:
        root = tmp_path / "voc"
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        width, height = size
        for image_id, objects in images.items():
            write_image(root / "JPEGImages" / f"{image_id}{ext}", width, height, format="JPEG")
            filename = (filenames or {}).get(image_id, f"{image_id}{ext}")
            (root / "Annotations" / f"{image_id}.xml").write_text(voc_xml(filename, width, height, objects))
        for name, ids in (splits if splits is not None else {"trainval": list(images)}).items():
            (root / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
        return root

    return build


@pytest.fixture
def image_writer() -> Callable[..., Path]:
    """write_image(path, width, height, mode='RGB', **save_args) -> path."""
    return write_image
