"""Unlabelled images for ``rcnn propose`` and ``rcnn detect``: folders, single files, or list files.

A list file is a ``.txt`` with one image path per line (relative paths are relative to the list).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from rcnn_cli.data.images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, image_size
from rcnn_cli.data.records import (
    DUPLICATE_ID,
    MISSING_IMAGE,
    TOO_LARGE,
    UNREADABLE_IMAGE,
    Dataset,
    ImageRecord,
    OnError,
    ProblemLog,
)
from rcnn_cli.errors import DataError


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _expand(spec: Path, log: ProblemLog) -> list[tuple[Path, str]]:
    """(image path, image id) pairs; ids are paths relative to a given folder, without extension."""
    if spec.is_dir():
        files = sorted(p for p in spec.rglob("*") if p.is_file() and is_image_file(p))
        return [(p, p.relative_to(spec).with_suffix("").as_posix()) for p in files]
    if spec.suffix.lower() == ".txt" and spec.is_file():
        pairs = []
        for line in spec.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                path = Path(line) if os.path.isabs(line) else spec.parent / line
                pairs.append((path, path.stem))
        return pairs
    if not spec.exists():
        log.report(spec, MISSING_IMAGE, "no such file or folder")
        return []
    return [(spec, spec.stem)]


def load_images(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    class_names: Iterable[str] = (),
    on_error: OnError = "skip",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Dataset:
    """Unlabelled records (G = 0) for image files, folders (searched recursively, sorted) and list files.

    Only headers are read (size, EXIF orientation). Bad or missing files and duplicate ids are
    skipped and recorded in ``Dataset.problems`` (``on_error="skip"``) or raised (``"raise"``).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    specs = [Path(p) for p in paths]
    if not specs:
        raise DataError(None, "no images given")
    log = ProblemLog(on_error)
    records: list[ImageRecord] = []
    seen: dict[str, Path] = {}
    for spec in specs:
        for path, image_id in _expand(spec, log):
            if image_id in seen:
                log.report(path, DUPLICATE_ID, f"image id {image_id!r} is also {seen[image_id]}")
                continue
            try:
                width, height = image_size(path, max_pixels=max_pixels)
            except DataError as exc:
                kind = TOO_LARGE if "megapixels" in exc.problem else UNREADABLE_IMAGE
                log.report(path, MISSING_IMAGE if not path.exists() else kind, exc.problem)
                continue
            seen[image_id] = path
            records.append(ImageRecord(image_id, path, width, height, max_pixels=max_pixels))
    if len(specs) == 1 and specs[0].is_dir():
        root = specs[0]
    else:
        parents = [str(p.parent if not p.is_dir() else p) for p in specs]
        root = Path(os.path.commonpath([os.path.abspath(p) for p in parents]))
    return Dataset(class_names=tuple(class_names), records=records, root=root, problems=tuple(log.problems))
