"""One record per image, a dataset of records, and the problems a loader found.

Shapes: G = number of ground-truth boxes in one image, K = number of classes (no background).
Boxes are float32 ``[x1, y1, x2, y2]`` in continuous pixel coordinates of the (EXIF-oriented)
image, area ``(x2 - x1) * (y2 - y1)``; labels are int64 in ``1..K`` (0 is background).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from rcnn_cli.data.images import DEFAULT_MAX_PIXELS
from rcnn_cli.errors import DataError, one_line

OnError = Literal["skip", "raise"]

# Problem kinds reported by loaders and by ``rcnn check``.
OUTSIDE = "box outside image"
ZERO_AREA = "zero or negative area"
BAD_COORDINATES = "bad coordinates"
UNKNOWN_CLASS = "unknown class"
MISSING_IMAGE = "missing image"
UNREADABLE_IMAGE = "unreadable image"
TOO_LARGE = "image too large"
SIZE_MISMATCH = "size mismatch"
ESCAPES_ROOT = "path escapes dataset root"
DUPLICATE_ID = "duplicate id"
BAD_ANNOTATION = "bad annotation file"


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def _empty_labels() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


def _empty_flags() -> np.ndarray:
    return np.zeros((0,), dtype=bool)


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One image and its ground truth.

    ``boxes``: float32 [G, 4] xyxy; ``labels``: int64 [G] in 1..K; ``difficult``: bool [G].
    ``width``/``height`` are those of the image as :func:`read_image` returns it (EXIF applied).
    An unlabelled image (from :func:`load_images`) has G = 0. ``max_pixels`` is the decoding safety
    limit (``--max-pixels``) the loader admitted the image under; :func:`read_record` decodes with it.
    """

    image_id: str
    path: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=_empty_boxes)
    labels: np.ndarray = field(default_factory=_empty_labels)
    difficult: np.ndarray = field(default_factory=_empty_flags)
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        # Normalise dtypes and shapes once here so that every consumer can rely on them.
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        difficult = np.asarray(self.difficult, dtype=bool).reshape(-1)
        if not (len(boxes) == len(labels) == len(difficult)):
            raise ValueError(
                f"{self.image_id}: boxes {boxes.shape}, labels {labels.shape}, "
                f"difficult {difficult.shape} differ"
            )
        # Loaders drop bad boxes before this point; the check here makes sure none slips through
        # to training, where a zero-width or NaN box would become a NaN loss much later.
        if len(boxes) and not (
            np.isfinite(boxes).all()
            and (boxes[:, 2] > boxes[:, 0]).all()
            and (boxes[:, 3] > boxes[:, 1]).all()
        ):
            raise ValueError(
                f"{self.image_id}: boxes must be finite with x2 > x1 and y2 > y1, got {boxes.tolist()}"
            )
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "difficult", difficult)

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class Problem:
    """One bad thing a loader or the data check found: the file, what kind, and a readable message."""

    path: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class Dataset:
    """A list of image records with the class list (without background: label k is ``class_names[k-1]``).

    ``problems``: what the loader skipped (with ``on_error="skip"``), for the caller to report.
    """

    class_names: tuple[str, ...]
    records: list[ImageRecord]
    root: Path
    problems: tuple[Problem, ...] = ()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class ProblemLog:
    """Collects problems while loading: ``on_error="raise"`` stops at the first as a :class:`DataError`."""

    def __init__(self, on_error: OnError) -> None:
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
        self.on_error = on_error
        self.problems: list[Problem] = []

    def report(self, path: str | os.PathLike[str], kind: str, message: str) -> None:
        problem = Problem(one_line(str(path)), kind, one_line(message))
        if self.on_error == "raise":
            raise DataError(problem.path, f"{kind}: {message}")
        self.problems.append(problem)


def inside_root(root: Path, relative: str) -> Path | None:
    """``root / relative`` if it stays inside ``root``, else None.

    Lexical (no symlink resolution), so a symlinked image folder still counts as inside.
    """
    root_norm = os.path.normpath(os.path.abspath(root))
    candidate = os.path.normpath(os.path.join(root_norm, relative))
    if os.path.isabs(relative) or not (candidate == root_norm or candidate.startswith(root_norm + os.sep)):
        return None
    return Path(candidate)


def is_file(path: Path) -> bool:
    """``path.is_file()``, but False (not an exception) for names the OS refuses, e.g. too long."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


BORDER_TOLERANCE = 1.0
"""A box may overshoot the image by this many pixels (a common off-by-one of 0-based tools); it is clipped."""


def clip_within_tolerance(
    box: tuple[float, float, float, float], width: int, height: int, tolerance: float = BORDER_TOLERANCE
) -> list[float] | None:
    """The box clipped to the image when it overshoots by at most ``tolerance`` px; None when it is outside.

    A box that keeps no area inside the image after clipping is outside too.
    """
    x1, y1, x2, y2 = box
    if x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance or y2 > height + tolerance:
        return None
    clipped = [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))]
    # Compared as stored (float32): a box 1e-9 px wide has no area once rounded.
    cx1, cy1, cx2, cy2 = np.asarray(clipped, dtype=np.float32)
    if cx2 <= cx1 or cy2 <= cy1:
        return None
    return clipped


def resolve_class_names(names: Sequence[str] | None, discovered: Sequence[str]) -> tuple[str, ...]:
    """The class list: the caller's when given (order kept), else the discovered names sorted."""
    if names is not None:
        names = tuple(names)
        if len(set(names)) != len(names):
            raise DataError(None, f"duplicate class names in {list(names)}")
        if not names:
            raise DataError(None, "the class list is empty")
        return names
    return tuple(sorted(set(discovered)))
