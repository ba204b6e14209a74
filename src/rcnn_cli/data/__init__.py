"""Datasets: one :class:`ImageRecord` per image, loaded from VOC, COCO JSON or plain image files.

Conventions (docs/ARCHITECTURE.md): boxes float32 [G, 4] xyxy in continuous pixels of the EXIF-oriented
image, labels int64 in 1..K (0 = background), ``Dataset.class_names`` without background.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rcnn_cli.data.coco import load_coco, to_coco, write_coco
from rcnn_cli.data.folder import load_images
from rcnn_cli.data.images import DEFAULT_MAX_PIXELS, image_size, read_image, read_record
from rcnn_cli.data.records import Dataset, ImageRecord, OnError, Problem
from rcnn_cli.data.sample import sample_dataset_path
from rcnn_cli.data.synthetic import make_synthetic_voc
from rcnn_cli.data.voc import is_voc_root, load_voc
from rcnn_cli.errors import DataError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Dataset",
    "ImageRecord",
    "Problem",
    "image_size",
    "load_coco",
    "load_images",
    "load_voc",
    "make_synthetic_voc",
    "open_dataset",
    "read_image",
    "read_record",
    "sample_dataset_path",
    "to_coco",
    "write_coco",
]


def open_dataset(
    spec: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    split: str | None = None,
    *,
    class_names: Sequence[str] | None = None,
    image_root: str | os.PathLike[str] | None = None,
    on_error: OnError = "skip",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Dataset:
    """Open whatever ``spec`` names: a VOC folder (has ``Annotations/``), a COCO ``.json``, or images.

    ``split`` applies to VOC (``ImageSets/Main/SPLIT.txt``; None: every annotation file); it is an
    error for other kinds, as ``image_root`` (where a COCO JSON's ``file_name`` paths start) is for
    anything but COCO. Images are a folder, an image file, a ``.txt`` list, or a list of those.
    """
    is_coco = isinstance(spec, (str, os.PathLike)) and Path(spec).suffix.lower() == ".json"
    if image_root is not None and not is_coco:
        shown = spec if isinstance(spec, (str, os.PathLike)) else None
        raise DataError(shown, f"--image-root {image_root} applies to a COCO JSON dataset only")
    if not isinstance(spec, (str, os.PathLike)):
        if split is not None:
            raise DataError(None, f"--split {split} needs a VOC dataset folder, not a list of images")
        return load_images(
            list(spec), class_names=class_names or (), on_error=on_error, max_pixels=max_pixels
        )
    path = Path(spec)
    if is_voc_root(path):
        return load_voc(path, split, class_names=class_names, on_error=on_error, max_pixels=max_pixels)
    if path.suffix.lower() == ".json":
        if split is not None:
            raise DataError(path, f"--split {split} applies to VOC folders; a COCO JSON file is one split")
        return load_coco(path, image_root, class_names=class_names, on_error=on_error, max_pixels=max_pixels)
    if not path.exists():
        raise DataError(path, "no such dataset, folder or image")
    if path.is_dir():
        nested = sorted(child.name for child in path.iterdir() if is_voc_root(child))
        if nested:
            raise DataError(
                path, f"holds VOC dataset folder(s) {', '.join(nested)}; pass one of them instead"
            )
    if split is not None:
        raise DataError(path, f"--split {split} needs a VOC dataset folder (Annotations/, ImageSets/Main/)")
    return load_images(path, class_names=class_names or (), on_error=on_error, max_pixels=max_pixels)
