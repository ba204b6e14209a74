"""Oracle proposals: jittered copies of every ground-truth box, plus random boxes.

Not a proposal method for new images, since it reads the annotations. It serves the tests, the
benchmarks and the synthetic shapes, where Selective Search would only add minutes. It also shows
how well a detector does when the proposals are not what limits it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.artifacts import Manifest, atomic_save_npz, write_manifest
from rcnn_cli.proposals.storage import FORMAT_VERSION, KIND, file_name


def jittered_ground_truth(
    record: Any, rng: np.random.Generator, num_random: int = 150, copies: int = 30, sigma: float = 0.12
) -> np.ndarray:
    """float32 [P, 4]: ``copies`` jittered copies of each gt box of ``record`` (corner noise ~ N(0, σ·size)),
    then ``num_random`` random boxes (sides 8–60% of the image); clipped, boxes under 2 px dropped."""
    boxes = [np.zeros((0, 4), np.float32)]
    for b in record.boxes:
        w, h = b[2] - b[0], b[3] - b[1]
        jitter = rng.normal(0, sigma, size=(copies, 4)) * np.array([w, h, w, h])
        boxes.append((b + jitter).astype(np.float32))
    xy = rng.uniform(0, 1, size=(num_random, 2)) * [record.width, record.height]
    wh = rng.uniform(0.08, 0.6, size=(num_random, 2)) * [record.width, record.height]
    boxes.append(np.concatenate([xy, xy + wh], 1).astype(np.float32))
    out = np.concatenate(boxes)
    out[:, 0::2] = out[:, 0::2].clip(0, record.width)
    out[:, 1::2] = out[:, 1::2].clip(0, record.height)
    keep = (out[:, 2] - out[:, 0] > 2) & (out[:, 3] - out[:, 1] > 2)
    return out[keep]


def write_jittered_proposals(
    folder: Path, records: Sequence[Any], num_random: int = 150, seed: int = 0
) -> Path:
    """A proposals folder (docs/FORMATS.md) of :func:`jittered_ground_truth` for every record."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        boxes = jittered_ground_truth(record, rng, num_random)
        atomic_save_npz(
            folder / file_name(record.image_id), boxes=boxes, scores=np.zeros(len(boxes), np.float32)
        )
    write_manifest(
        folder, Manifest(kind=KIND, format_version=FORMAT_VERSION, params={"method": "jittered-ground-truth"})
    )
    return folder
