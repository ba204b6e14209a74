"""What a picture is of, and where it goes: one image (a file, or an id in a dataset) and the PNG path.

Every mistake is one :class:`RcnnError` line naming the file: a missing image, an unknown id, an output
folder that is not one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcnn_cli.errors import DataError, RcnnError


@dataclass(frozen=True)
class Picked:
    """The image a picture is of (``record``: its ground truth when it comes from a dataset) and the
    dataset it belongs to (the image alone when given as a file)."""

    record: Any
    dataset: Any

    @property
    def has_ground_truth(self) -> bool:
        """Whether the image comes with annotations (a dataset), even if it has no object."""
        return bool(self.dataset.class_names)


def pick_image(
    image: str | None,
    dataset: str | None,
    split: str | None = None,
    image_id: str | None = None,
    max_pixels: int | None = None,
    image_root: str | Path | None = None,
) -> Picked:
    """The image ``image`` (a file), or the one called ``image_id`` in ``dataset`` (a VOC folder or COCO
    JSON; its first image when no id is given). Raises :class:`RcnnError` for both or neither, a
    missing or unreadable file, or an id the dataset does not have. ``image_root``: a COCO JSON's image
    folder (None: the JSON's default)."""
    from rcnn_cli.data import DEFAULT_MAX_PIXELS, open_dataset

    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if (image is None) == (dataset is None):
        raise RcnnError("give an IMAGE file or --dataset DATASET [--image-id ID] (one of them)")
    if image is not None:
        if image_id is not None or split is not None or image_root is not None:
            raise RcnnError(
                "--image-id, --split and --image-root go with --dataset; an IMAGE file needs none of them"
            )
        path = Path(image)
        if path.is_dir():
            raise DataError(path, "is a folder; give one image file (or --dataset FOLDER --image-id ID)")
        found = open_dataset(path, on_error="raise", max_pixels=limit)
        return Picked(found.records[0], found)
    assert dataset is not None
    found = open_dataset(dataset, split, max_pixels=limit, image_root=image_root)
    if not found.records:
        first = f" ({found.problems[0]})" if found.problems else ""
        raise DataError(dataset, f"no readable images{first}")
    if image_id is None:
        return Picked(found.records[0], found)
    for record in found.records:
        if record.image_id == image_id:
            return Picked(record, found)
    known = ", ".join(r.image_id for r in found.records[:4])
    raise DataError(dataset, f"no image with id {image_id!r} (ids are like {known} ...)")


def output_path(output: Path | None, record: Any, kind: str) -> Path:
    """Where the picture of ``kind`` goes: ``output`` itself when it names a ``.png`` file (its folder
    must exist), else ``<id>_<kind>.png`` in the folder ``output`` (made when missing; the current folder
    when None)."""
    from rcnn_cli.artifacts import check_parent_folder, safe_stem

    name = f"{safe_stem(record.image_id)}_{kind}.png"
    if output is None:
        return Path(name)
    if output.suffix.lower() == ".png" and not output.is_dir():
        check_parent_folder(output)
        return output
    if output.exists() and not output.is_dir():
        raise RcnnError(f"{output}: not a folder, and not a .png file name; give OUT.png or a folder")
    if output.suffix and not output.exists():
        raise RcnnError(f"{output}: the pictures are PNG files; give a name ending in .png, or a folder")
    output.mkdir(parents=True, exist_ok=True)
    return output / name
