"""The calibration images distillation learns on: a seeded, ordered subset of a dataset, each image
read lazily with its proposals; what cannot be read is reported and skipped."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from rcnn_cli.data.images import DEFAULT_MAX_PIXELS
from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.distill.config import DistillConfig


def pick_calibration(records: Sequence, count: int, seed: int = 0) -> list:
    """``count`` records spread over the list (a seeded draw, kept in dataset order)."""
    if count >= len(records):
        return list(records)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(records), generator=generator)[:count].sort().values
    return [records[int(i)] for i in chosen]


def calibration_images(
    records: Sequence, proposal_source: Callable, log: Callable[[str], None] = lambda _m: None
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(rgb, proposals) of each record, read lazily; an unreadable image or missing proposals is
    reported through ``log`` and skipped. ``proposal_source``: a :data:`detect.ProposalSource`."""
    from rcnn_cli.data import read_record
    from rcnn_cli.errors import DataError

    for record in records:
        try:
            rgb = read_record(record)
            yield rgb, proposal_source(record, rgb)
        except DataError as exc:
            log(f"skipped: {exc}")


def open_calibration(
    spec: str,
    split: str | None,
    proposal_source: Callable,
    config: DistillConfig,
    warn: Callable[[str], None],
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    image_root: str | os.PathLike[str] | None = None,
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """The (rgb, proposals) pairs to distill on: up to ``config.images`` images of dataset ``spec``
    (:func:`pick_calibration`), read lazily. Whatever the loader or the reading skips is reported
    through ``warn``; a dataset without images is an error. ``max_pixels``: the decoding limit;
    ``image_root``: a COCO JSON's image folder (None: the JSON's own default)."""
    from rcnn_cli.data import open_dataset

    dataset = open_dataset(spec, split, max_pixels=max_pixels, image_root=image_root)
    for problem in dataset.problems:
        warn(f"skipped: {problem}")
    if not dataset.records:
        raise RcnnError(f"{spec}: no images to distill on" + (f" in split {split}" if split else ""))
    records = pick_calibration(dataset.records, config.images, config.seed)
    return calibration_images(records, proposal_source, warn)
