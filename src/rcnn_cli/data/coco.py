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
    is_file,
    resolve_class_names,
)
from rcnn_cli.errors import DataError


def _read_json(json_path: Path) -> dict[str, Any]:
    if not json_path.is_file():
        raise DataError(json_path, "no such COCO JSON file")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        # ValueError covers bad JSON, bad UTF-8 and integers past Python's 4300-digit limit;
        # RecursionError absurdly deep nesting.
        raise DataError(json_path, f"not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(json_path, "not a COCO dataset file (no 'images' list)")
    return data


def _section(data: dict[str, Any], key: str, json_path: Path) -> list[Any]:
    """``data[key]`` as a list; absent is empty, anything else (null, an object ...) is an error."""
    value = data.get(key, [])
    if not isinstance(value, list):
        raise DataError(json_path, f"'{key}' must be a list, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_id(value: Any) -> bool:
    """COCO ids are integers; strings are accepted too. (bool is an int to Python, not an id.)"""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _default_image_root(json_path: Path, data: dict[str, Any]) -> Path:
    info = data.get("info")
    stored = info.get("image_root") if isinstance(info, dict) else None
    return json_path.parent / stored if isinstance(stored, str) else json_path.parent


def _categories(data: dict[str, Any], json_path: Path, log: ProblemLog) -> list[tuple[Any, str]]:
    """(id, name) of the well-formed categories, by id (integer ids first, then string ids)."""
    found = []
    for category in _section(data, "categories", json_path):
        if not isinstance(category, dict) or not _is_id(category.get("id")):
            log.report(json_path, BAD_ANNOTATION, f"category {category!r} has no integer id")
            continue
        found.append((category["id"], str(category.get("name", category["id"]))))
    return sorted(found, key=lambda c: (isinstance(c[0], str), c[0]))


def _annotations_by_image(data: dict[str, Any], json_path: Path, log: ProblemLog) -> dict[Any, list[dict]]:
    per_image: dict[Any, list[dict[str, Any]]] = {}
    seen: set[Any] = set()
    for ann in _section(data, "annotations", json_path):
        if not isinstance(ann, dict) or not _is_id(ann.get("image_id")):
            log.report(json_path, BAD_ANNOTATION, f"annotation {ann!r} is not an object with an image_id")
            continue
        if "id" in ann:
            if not _is_id(ann["id"]):
                log.report(json_path, BAD_ANNOTATION, f"annotation id {ann['id']!r} is not an integer")
                continue
            if ann["id"] in seen:
                log.report(json_path, DUPLICATE_ID, f"annotation id {ann['id']} appears more than once")
                continue
            seen.add(ann["id"])
        per_image.setdefault(ann["image_id"], []).append(ann)
    return per_image


def _box(ann: dict[str, Any], what: str, width: int, height: int, json_path: Path, log: ProblemLog):
    """The annotation's bbox as a clipped xyxy box, or None (reported) when it is bad."""
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        log.report(json_path, BAD_COORDINATES, f"{what}: bbox {bbox!r} is not four finite numbers")
        return None
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        log.report(json_path, ZERO_AREA, f"{what}: bbox {bbox}")
        return None
    clipped = clip_within_tolerance((x, y, x + w, y + h), width, height)
    if clipped is None:
        log.report(json_path, OUTSIDE, f"{what}: bbox {bbox} outside the {width}x{height} image")
    return clipped


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
    A malformed file (``annotations`` not a list ...) is a :class:`DataError`; a malformed entry
    in it is a problem, reported (or raised) like every bad box.
    """
    json_path = Path(json_path)
    data = _read_json(json_path)
    root = Path(image_root) if image_root is not None else _default_image_root(json_path, data)
    log = ProblemLog(on_error)

    categories = _categories(data, json_path, log)
    names = resolve_class_names(class_names, [name for _, name in categories])
    if class_names is None:
        names = tuple(name for _, name in categories)  # keep COCO's id order
    name_to_label = {name: k for k, name in enumerate(names, start=1)}
    category_label = {cid: name_to_label.get(name) for cid, name in categories}
    per_image = _annotations_by_image(data, json_path, log)

    records: list[ImageRecord] = []
    seen_images: set[str] = set()
    for image in data["images"]:
        if not isinstance(image, dict) or not _is_id(image.get("id")) or not image.get("file_name"):
            log.report(json_path, BAD_ANNOTATION, f"image entry {image!r} lacks an integer id or file_name")
            continue
        coco_id, file_name = image["id"], image["file_name"]
        where = f"image {coco_id} ({file_name})"
        if str(coco_id) in seen_images:  # records are keyed by str(id): 7 and "7" are one image
            log.report(json_path, DUPLICATE_ID, f"image id {coco_id!r} appears more than once")
            continue
        seen_images.add(str(coco_id))
        path = inside_root(root, file_name) if isinstance(file_name, str) else None
        if path is None:
            log.report(json_path, ESCAPES_ROOT, f"{where}: file_name is not a path inside {root}")
            continue
        if not is_file(path):
            log.report(path, MISSING_IMAGE, f"{where}: no such image file")
            continue
        try:
            width, height = image_size(path, max_pixels=max_pixels)
        except DataError as exc:
            log.report(path, TOO_LARGE if "megapixels" in exc.problem else UNREADABLE_IMAGE, exc.problem)
            continue
        annotated = (image.get("width"), image.get("height"))
        if None not in annotated and annotated != (width, height):
            log.report(
                json_path,
                SIZE_MISMATCH,
                f"{where}: JSON says {annotated[0]}x{annotated[1]} but the image is {width}x{height}",
            )
            continue
        boxes, labels, difficult = [], [], []
        for ann in per_image.pop(coco_id, []):
            what = f"{where} annotation {ann.get('id', '?')}"
            category = ann.get("category_id")
            label = category_label.get(category) if _is_id(category) else None
            if label is None:
                log.report(json_path, UNKNOWN_CLASS, f"{what}: category_id {category!r}")
                continue
            box = _box(ann, what, width, height, json_path, log)
            if box is not None:
                boxes.append(box)
                labels.append(label)
                difficult.append(bool(ann.get("iscrowd", 0)))
        record = ImageRecord(str(coco_id), path, width, height, boxes, labels, difficult, max_pixels)
        records.append(record)
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
