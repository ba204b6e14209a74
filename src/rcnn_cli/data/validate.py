"""The data check: every bad annotation and image of a dataset, each with its file.

Loading (VOC, COCO, images) already reports bad boxes (outside the image, zero or negative
area, non-finite), unknown classes, missing images, paths that escape the dataset root,
duplicate ids and annotation/image size mismatches. The check adds a full decode of every image
(truncated, corrupt, too large), which loading skips for speed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rcnn_cli.data.images import DEFAULT_MAX_PIXELS, read_image
from rcnn_cli.data.records import SIZE_MISMATCH, UNREADABLE_IMAGE, Dataset, OnError, Problem, ProblemLog
from rcnn_cli.errors import DataError


@dataclass(frozen=True)
class CheckReport:
    """What the check found. ``dataset`` holds only the good records and boxes (what training would see)."""

    dataset: Dataset
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def num_boxes(self) -> int:
        return sum(record.num_boxes for record in self.dataset.records)

    def summary(self) -> str:
        names = ", ".join(self.dataset.class_names) or "unlabelled"
        found = "no problems" if self.ok else f"{len(self.problems)} problem(s)"
        return (
            f"{len(self.dataset.records)} good images, {self.num_boxes} good boxes, "
            f"{self.dataset.num_classes} classes ({names}): {found}"
        )

    def summary_lines(self, first_cases: bool = False) -> list[str]:
        """What ``rcnn check`` prints after the list of problems (and ``rcnn train`` before training):
        one line per kind of problem with its count, most frequent first, then :meth:`summary`. With
        ``first_cases`` (train, which does not list each problem) each line also gives its kind's first
        case, which names the file and says what to do (e.g. "raise it with --max-pixels")."""
        counts = Counter(problem.kind for problem in self.problems)
        first: dict[str, object] = {}
        for problem in self.problems:
            first.setdefault(problem.kind, problem)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        lines = [
            f"  {kind}: {count}" + (f" (first: {first[kind]})" if first_cases else "")
            for kind, count in ranked
        ]
        return [*lines, self.summary()]


def check_dataset(
    spec: str | os.PathLike[str],
    split: str | None = None,
    *,
    class_names: Sequence[str] | None = None,
    image_root: str | os.PathLike[str] | None = None,
    decode: bool = True,
    on_error: OnError = "skip",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_image: Callable[[Path], None] | None = None,
) -> CheckReport:
    """Check a dataset (anything :func:`rcnn_cli.data.open_dataset` opens).

    ``decode``: also decode every image. ``on_error="raise"`` stops at the first problem with a
    :class:`DataError`. ``on_image`` is called after each decoded image (for a progress bar).
    """
    from rcnn_cli.data import open_dataset  # the package imports this module's siblings first

    dataset = open_dataset(
        Path(spec),
        split,
        class_names=class_names,
        image_root=image_root,
        on_error=on_error,
        max_pixels=max_pixels,
    )
    return check_records(dataset, decode=decode, on_error=on_error, max_pixels=max_pixels, on_image=on_image)


def check_records(
    dataset: Dataset,
    *,
    decode: bool = True,
    on_error: OnError = "skip",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_image: Callable[[Path], None] | None = None,
) -> CheckReport:
    """Decode every image of a loaded dataset; the report adds what fails to ``dataset.problems``."""
    log = ProblemLog(on_error)
    good = []
    for record in dataset.records:
        if decode:
            try:
                pixels = read_image(record.path, max_pixels=max_pixels)
            except DataError as exc:
                log.report(record.path, UNREADABLE_IMAGE, exc.problem)
                continue
            finally:
                if on_image is not None:
                    on_image(record.path)
            if pixels.shape[:2] != (record.height, record.width):
                shape = f"{pixels.shape[1]}x{pixels.shape[0]}"
                header = f"{record.width}x{record.height}"
                log.report(record.path, SIZE_MISMATCH, f"decodes as {shape}, header said {header}")
                continue
        good.append(record)
    clean = Dataset(class_names=dataset.class_names, records=good, root=dataset.root)
    return CheckReport(dataset=clean, problems=dataset.problems + tuple(log.problems))
