"""COCO JSON: ``images`` (id, file_name, width, height), ``annotations`` (bbox xywh, category_id,
iscrowd), ``categories`` (id, name).

COCO boxes are already continuous pixels: ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]``.
Categories are ordered by id and numbered 1..K in that order (COCO's ids 1..90 with gaps become
1..80). ``iscrowd`` becomes ``difficult`` (both mean: neither a hit nor a miss in evaluation).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rcnn_cli.artifacts import atomic_write_json
from rcnn_cli.data.images import DEFAULT_MAX_PIXELS, image_size
from rcnn_cli.data.records import (
    BAD_ANNOTATION,
    BAD_COORDINATES,
    DUPLICATE_ID,
    ESCAPES_ROOT,
    MISSING_IMAGE,
    OUTSIDE,
    SIZE_MISMATCH,
    TOO_LARGE,
    UNKNOWN_CLASS,
    UNREADABLE_IMAGE,
    ZERO_AREA,
    Dataset,
    ImageRecord,
    OnError,
    ProblemLog,
    clip_within_tolerance,
    inside_root,
    resolve_class_names,
)
from rcnn_cli.errors import DataError


def _read_json(json_path: Path) -> dict[str, Any]:
    if not json_path.is_file():
        raise DataError(json_path, "no such COCO JSON file")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(json_path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(json_path, "not a COCO dataset file (no 'images' list)")
    return data


def _default_image_root(json_path: Path, data: dict[str, Any]) -> Path:
    info = data.get("info")
    stored = info.get("image_root") if isinstance(info, dict) else None
    return json_path.parent / stored if isinstance(stored, str) else json_path.parent


def load_coco(
    json_path: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    on_error: OnError = "skip",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Dataset:
    """Load a COCO JSON dataset; image ``file_name`` is relative to ``image_root``.

    Default ``image_root``: ``info.image_root`` of the JSON (relative to the JSON's folder, as
    :func:`write_coco` stores it) when present, else the JSON's folder.

    ``image_id`` of each record is ``str(coco image id)``. ``class_names``: keep only these
    categories, in this order (others are reported as unknown); default: every category by id.
    """
    json_path = Path(json_path)
    data = _read_json(json_path)
    root = Path(image_root) if image_root is not None else _default_image_root(json_path, data)
    log = ProblemLog(on_error)

    categories = sorted(
        (c for c in data.get("categories", []) if isinstance(c, dict) and "id" in c), key=lambda c: c["id"]
    )
    names = resolve_class_names(class_names, [str(c.get("name", c["id"])) for c in categories])
    if class_names is None:
        names = tuple(str(c.get("name", c["id"])) for c in categories)  # keep COCO's id order
    name_to_label = {name: k for k, name in enumerate(names, start=1)}
    category_label = {c["id"]: name_to_label.get(str(c.get("name", c["id"]))) for c in categories}

    per_image: dict[Any, list[dict[str, Any]]] = {}
    seen_ann: set[Any] = set()
    for ann in data.get("annotations", []):
        if not isinstance(ann, dict):
            log.report(json_path, BAD_ANNOTATION, f"annotation {ann!r} is not an object")
            continue
        if "id" in ann:
            if ann["id"] in seen_ann:
                log.report(json_path, DUPLICATE_ID, f"annotation id {ann['id']} appears more than once")
                continue
            seen_ann.add(ann["id"])
        per_image.setdefault(ann.get("image_id"), []).append(ann)

    records: list[ImageRecord] = []
    seen_images: set[Any] = set()
    for image in data["images"]:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            log.report(json_path, BAD_ANNOTATION, f"image entry {image!r} lacks id or file_name")
            continue
        coco_id, file_name = image["id"], str(image["file_name"])
        where = f"image {coco_id} ({file_name})"
        if coco_id in seen_images:
            log.report(json_path, DUPLICATE_ID, f"image id {coco_id} appears more than once")
            continue
        seen_images.add(coco_id)
        path = inside_root(root, file_name)
        if path is None:
            log.report(json_path, ESCAPES_ROOT, f"{where}: file_name points outside {root}")
            continue
        if not path.is_file():
            log.report(path, MISSING_IMAGE, f"{where}: no such image file")
            continue
        try:
            width, height = image_size(path, max_pixels=max_pixels)
        except DataError as exc:
            log.report(path, TOO_LARGE if "megapixels" in exc.problem else UNREADABLE_IMAGE, exc.problem)
            continue
        annotated = (image.get("width"), image.get("height"))
        if None not in annotated and tuple(annotated) != (width, height):
            log.report(
                json_path,
                SIZE_MISMATCH,
                f"{where}: JSON says {annotated[0]}x{annotated[1]} but the image is {width}x{height}",
            )
            continue
        boxes, labels, difficult = [], [], []
        for ann in per_image.pop(coco_id, []):
            what = f"{where} annotation {ann.get('id', '?')}"
            label = category_label.get(ann.get("category_id"))
            if label is None:
                log.report(json_path, UNKNOWN_CLASS, f"{what}: category_id {ann.get('category_id')!r}")
                continue
            bbox = ann.get("bbox")
            if (
                not isinstance(bbox, list)
                or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)
            ):
                log.report(json_path, BAD_COORDINATES, f"{what}: bbox {bbox!r} is not four finite numbers")
                continue
            x, y, w, h = (float(v) for v in bbox)
            if w <= 0 or h <= 0:
                log.report(json_path, ZERO_AREA, f"{what}: bbox {bbox}")
                continue
            x2, y2 = x + w, y + h
            clipped = clip_within_tolerance((x, y, x2, y2), width, height)
            if clipped is None:
                log.report(json_path, OUTSIDE, f"{what}: bbox {bbox} outside the {width}x{height} image")
                continue
            boxes.append(clipped)
            labels.append(label)
            difficult.append(bool(ann.get("iscrowd", 0)))
        records.append(ImageRecord(str(coco_id), path, width, height, boxes, labels, difficult))
    for image_id, anns in per_image.items():
        message = f"{len(anns)} annotation(s) refer to unknown image id {image_id!r}"
        log.report(json_path, BAD_ANNOTATION, message)
    return Dataset(class_names=names, records=records, root=root, problems=tuple(log.problems))


def to_coco(dataset: Dataset, image_root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The dataset as a COCO dict; ``file_name`` relative to ``image_root`` (default ``dataset.root``).

    Image ids are 1..N in record order (our string id is kept as ``"name"``); category k is label k.
    """
    root = Path(image_root if image_root is not None else dataset.root)
    images, annotations = [], []
    for number, record in enumerate(dataset.records, start=1):
        file_name = os.path.relpath(os.path.abspath(record.path), os.path.abspath(root))
        images.append(
            {
                "id": number,
                "file_name": Path(file_name).as_posix(),
                "width": record.width,
                "height": record.height,
                "name": record.image_id,
            }
        )
        columns = (record.boxes.tolist(), record.labels.tolist(), record.difficult.tolist())
        for box, label, hard in zip(*columns, strict=True):
            x1, y1, x2, y2 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": number,
                    "category_id": int(label),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(hard),
                }
            )
    categories = [
        {"id": k, "name": name, "supercategory": "none"}
        for k, name in enumerate(dataset.class_names, start=1)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(
    dataset: Dataset, json_path: str | os.PathLike[str], image_root: str | os.PathLike[str] | None = None
) -> Path:
    """Write the dataset as COCO JSON (atomically).

    ``file_name`` is relative to ``image_root`` (default ``dataset.root``), and the JSON records
    that folder as ``info.image_root`` relative to its own folder, so :func:`load_coco` finds the
    images without being told where they are.
    """
    json_path = Path(json_path)
    root = Path(image_root if image_root is not None else dataset.root)
    coco = to_coco(dataset, root)
    relative_root = os.path.relpath(os.path.abspath(root), os.path.abspath(json_path.parent))
    coco["info"] = {"description": "written by rcnn-cli", "image_root": Path(relative_root).as_posix()}
    atomic_write_json(json_path, coco)
    return json_path
