"""PASCAL VOC layout: ``Annotations/ID.xml``, ``JPEGImages/ID.jpg``, ``ImageSets/Main/SPLIT.txt``.

VOC boxes are 1-based and inclusive (``xmin..xmax`` covers pixels xmin to xmax); ours are
continuous, so a VOC box becomes ``[xmin - 1, ymin - 1, xmax, ymax]`` (docs/ARCHITECTURE.md, "Conventions").
Handled quirks: empty ``<difficult/>``, float coordinates, boxes touching the border (and
overshooting it by at most ``BORDER_TOLERANCE`` px: clipped), images without objects, upper-case
extensions, a ``<filename>`` that disagrees with the id. A box with ``xmax <= xmin`` or
``ymax <= ymin`` is a stray click, not an object, and is reported as zero area.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rcnn_cli.data.images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, image_size, raw_image_size
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


def is_voc_root(path: Path) -> bool:
    return path.is_dir() and (path / "Annotations").is_dir()


def _text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


def _parse_xml(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataError(path, f"{BAD_ANNOTATION}: not valid XML ({exc})") from None
    except OSError as exc:
        raise DataError(path, f"{BAD_ANNOTATION}: cannot read ({exc})") from None


def split_ids(root: Path, split: str | None) -> list[tuple[str, str]]:
    """(where, image id) of each line of ``ImageSets/Main/SPLIT.txt`` (where: ``SPLIT.txt:LINE``);
    every annotation file (where: the file) when split is None."""
    root = Path(root)
    if split is None:
        files = sorted((root / "Annotations").glob("*.xml"), key=lambda p: p.stem)
        return [(str(p), p.stem) for p in files]
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        found = sorted(p.stem for p in (root / "ImageSets" / "Main").glob("*.txt"))
        hint = f"; splits found: {', '.join(found)}" if found else "; the folder has no split files"
        raise DataError(split_file, f"no split file for split {split!r}{hint}")
    ids = []
    for number, line in enumerate(split_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        # VOC's per-class files carry a second column ("000005 -1"); the plain ones just the id.
        fields = line.split()
        if fields:
            ids.append((f"{split_file}:{number}", fields[0]))
    return ids


def is_plain_id(image_id: str) -> bool:
    """A VOC id names a file of Annotations/ without extension: no path separator, not ``..``."""
    return not ({"/", "\\", "\0"} & set(image_id)) and image_id not in (".", "..")


def discover_voc_classes(root: Path) -> tuple[str, ...]:
    """Every object name in ``Annotations/*.xml`` (all splits, so train and test agree), sorted."""
    names: set[str] = set()
    for xml_path in (Path(root) / "Annotations").glob("*.xml"):
        try:
            tree = ET.parse(xml_path).getroot()
        except (ET.ParseError, OSError):
            continue  # reported when the file itself is loaded
        names.update(_text(obj.find("name")) for obj in tree.findall("object"))
    names.discard("")
    return tuple(sorted(names))


class _ImageFinder:
    """Finds an image in JPEGImages whatever the case of its extension, with one folder listing."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            entries = os.listdir(folder)
        except OSError:
            entries = []
        self.by_lower = {name.lower(): name for name in entries}
        self.by_stem: dict[str, str] = {}
        for name in sorted(entries):
            stem, ext = os.path.splitext(name)
            if ext.lower() in IMAGE_EXTENSIONS:
                self.by_stem.setdefault(stem, name)

    def find(self, filename: str, image_id: str) -> Path | None:
        if filename:
            if is_file(self.folder / filename):
                return self.folder / filename
            actual = self.by_lower.get(filename.lower())
            if actual is not None:
                return self.folder / actual
        actual = self.by_stem.get(image_id)
        return None if actual is None else self.folder / actual


def _read_size(path: Path, xml_path: Path, tree: ET.Element, log: ProblemLog, max_pixels: int | None):
    """The oriented image size from the header; reported when the annotation's size disagrees."""
    try:
        width, height = image_size(path, max_pixels=max_pixels)
    except DataError as exc:
        kind = TOO_LARGE if "megapixels" in exc.problem else UNREADABLE_IMAGE
        log.report(path, kind, exc.problem)
        return None
    xml_w, xml_h = _text(tree.find("size/width")), _text(tree.find("size/height"))
    try:
        annotated = (int(float(xml_w)), int(float(xml_h))) if xml_w and xml_h else None
    except (ValueError, OverflowError):  # "abc", "nan"; "inf" and 1e999 overflow int()
        annotated = None
    if annotated is not None and annotated != (0, 0) and annotated != (width, height):
        hint = ""
        if annotated == raw_image_size(path):
            hint = " (the annotation ignores the image's EXIF rotation; boxes would be rotated)"
        log.report(
            xml_path,
            SIZE_MISMATCH,
            f"annotation says {annotated[0]}x{annotated[1]} but {path.name} is {width}x{height}{hint}",
        )
        return None
    return width, height


def _parse_objects(xml_path, tree, width, height, class_index, log):
    boxes, labels, difficult = [], [], []
    for number, obj in enumerate(tree.findall("object"), start=1):
        name = _text(obj.find("name"))
        where = f"object {number} ({name or 'no name'})"
        if name not in class_index:
            log.report(xml_path, UNKNOWN_CLASS, f"{where}: class {name!r} is not in {list(class_index)}")
            continue
        box = obj.find("bndbox")
        raw = [_text(None if box is None else box.find(key)) for key in ("xmin", "ymin", "xmax", "ymax")]
        try:
            xmin, ymin, xmax, ymax = (float(v) for v in raw)
        except ValueError:
            log.report(xml_path, BAD_COORDINATES, f"{where}: bndbox {raw} is not four numbers")
            continue
        if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
            log.report(xml_path, BAD_COORDINATES, f"{where}: bndbox {raw} is not finite")
            continue
        if xmax <= xmin or ymax <= ymin:
            log.report(
                xml_path, ZERO_AREA, f"{where}: xmin={raw[0]} ymin={raw[1]} xmax={raw[2]} ymax={raw[3]}"
            )
            continue
        x1, y1, x2, y2 = xmin - 1.0, ymin - 1.0, xmax, ymax
        clipped = clip_within_tolerance((x1, y1, x2, y2), width, height)
        if clipped is None:
            log.report(
                xml_path,
                OUTSIDE,
                f"{where}: box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] (0-based) outside the {width}x{height} image",
            )
            continue
        boxes.append(clipped)
        labels.append(class_index[name])
        # An empty <difficult/> (or none) means not difficult.
        difficult.append(_text(obj.find("difficult")) in ("1", "true", "True"))
    return (
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(labels, dtype=np.int64),
        np.asarray(difficult, dtype=bool),
    )


def load_voc(
    root: str | os.PathLike[str],
    split: str | None = "trainval",
    *,
    class_names: Sequence[str] | None = None,
    on_error: OnError = "skip",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Dataset:
    """Load a VOC-layout dataset split.

    ``split``: name of ``ImageSets/Main/SPLIT.txt`` (a missing file is an error), or None for every
    annotation file. ``class_names``: the class list in label order; by default the names found in
    all annotation files, sorted. ``on_error``: ``"skip"`` drops a bad box (or a bad image) and
    records it in ``Dataset.problems``; ``"raise"`` stops with a :class:`DataError` at the first.
    Only image headers are read here; :func:`rcnn_cli.data.validate.check_dataset` decodes them.
    """
    root = Path(root)
    if not is_voc_root(root):
        raise DataError(root, "not a VOC dataset folder (no Annotations/ inside)")
    names = resolve_class_names(class_names, discover_voc_classes(root) if class_names is None else ())
    class_index = {name: k for k, name in enumerate(names, start=1)}
    log = ProblemLog(on_error)
    finder = _ImageFinder(root / "JPEGImages")
    records: list[ImageRecord] = []
    seen: set[str] = set()
    for where, image_id in split_ids(root, split):
        if not is_plain_id(image_id):
            message = f"image id {image_id!r} is a path, not the name of a file in Annotations/"
            log.report(where, ESCAPES_ROOT, message)
            continue
        if image_id in seen:
            log.report(where, DUPLICATE_ID, f"image id {image_id!r} is listed more than once")
            continue
        seen.add(image_id)
        xml_path = root / "Annotations" / f"{image_id}.xml"
        if not is_file(xml_path):
            log.report(xml_path, BAD_ANNOTATION, f"no annotation file for image id {image_id!r}")
            continue
        try:
            tree = _parse_xml(xml_path)
        except DataError as exc:
            log.report(xml_path, BAD_ANNOTATION, exc.problem.removeprefix(f"{BAD_ANNOTATION}: "))
            continue
        filename = _text(tree.find("filename"))
        if filename and inside_root(root / "JPEGImages", filename) is None:
            log.report(xml_path, ESCAPES_ROOT, f"<filename>{filename}</filename> points outside {root}")
            continue
        image_path = finder.find(filename, image_id)
        if image_path is None:
            log.report(xml_path, MISSING_IMAGE, f"no image {filename or image_id + '.*'} in {finder.folder}")
            continue
        size = _read_size(image_path, xml_path, tree, log, max_pixels)
        if size is None:
            continue
        width, height = size
        boxes, labels, difficult = _parse_objects(xml_path, tree, width, height, class_index, log)
        records.append(ImageRecord(image_id, image_path, width, height, boxes, labels, difficult, max_pixels))
    return Dataset(class_names=names, records=records, root=root, problems=tuple(log.problems))
