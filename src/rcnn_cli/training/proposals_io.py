"""Reading a proposals folder made by ``rcnn propose``: ``<image_id>.npz`` (``boxes`` float32 [P, 4] in
original pixels, ``scores`` [P]) per image plus ``manifest.json`` (kind ``proposals``).

Everything is checked before training starts, so a missing, partial or stale folder is one clear error.
An image that ``rcnn propose`` skipped (``<image_id>.skipped.json``, recorded for the image's bytes as
they are now) is not a gap: it is left out, and the caller hears why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.errors import ArtifactError, DataError

#: ``on_skip(record, reason)``: an image that ``rcnn propose`` skipped, with the reason it gave.
OnSkip = Callable[[Any, str], None]


def load_proposals(
    folder: str | Path, records: list, max_proposals: int | None = None, on_skip: OnSkip | None = None
) -> dict[str, Tensor]:
    """{image_id: Tensor[P, 4]} for every record that has proposals; the first ``max_proposals`` boxes
    (highest score first). Records of images that ``rcnn propose`` skipped are not in the result;
    ``on_skip`` is called for each of them.

    Raises ArtifactError when the folder or manifest is missing, when images have no file and were not
    skipped (partial), or when a file does not fit its image (stale: made for other images).
    """
    from rcnn_cli.fingerprints import Fingerprints
    from rcnn_cli.proposals.storage import open_proposals

    folder = Path(folder)
    store, _manifest = open_proposals(folder)
    out: dict[str, Tensor] = {}
    with Fingerprints() as fingerprints:
        skipped: dict[str, str] = {}
        missing: list[str] = []
        for record in records:
            if store.exists(record.image_id):
                continue
            reason = store.skip_reason(record.image_id, fingerprints.of(record.path))
            if reason is None:  # not done yet: the folder is partial
                missing.append(record.image_id)
            else:
                skipped[record.image_id] = reason
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ArtifactError(
                f"{folder}: partial proposals folder: {len(missing)} of {len(records)} images have no "
                f"<image_id>.npz ({shown}); rerun 'rcnn propose' on this dataset to complete it"
            )
        for record in records:
            if record.image_id in skipped:
                if on_skip is not None:
                    on_skip(record, skipped[record.image_id])
                continue
            path = store.path(record.image_id)
            # Made from these very images (fingerprints) and of their sizes, else refused naming the file.
            try:
                found = store.read_checked(record, fingerprints.of(record.path))
            except DataError as exc:
                raise ArtifactError(str(exc)) from None
            out[record.image_id] = _usable_boxes(path, record, found.boxes, found.scores, max_proposals)
    return out


def _usable_boxes(
    path: Path, record: Any, boxes: np.ndarray, scores: np.ndarray, max_proposals: int | None
) -> Tensor:
    """Checked, best-first, clipped boxes Tensor[P, 4] with at least a pixel of width and height."""
    if not np.isfinite(boxes).all():
        raise ArtifactError(f"{path}: 'boxes' must be finite float [P, 4]")
    slack = 2.0
    if len(boxes) and (
        boxes[:, :2].min() < -slack
        or boxes[:, 2].max() > record.width + slack
        or boxes[:, 3].max() > record.height + slack
    ):
        raise ArtifactError(
            f"{path}: stale proposals: boxes reach beyond the {record.width}x{record.height} image "
            f"{record.path.name}; the folder was made for other images, rerun 'rcnn propose'"
        )
    if len(scores) == len(boxes) and len(boxes) > 1:
        boxes = boxes[np.argsort(-scores, kind="stable")]
    if max_proposals is not None:
        boxes = boxes[:max_proposals]
    boxes = boxes.copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, record.width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, record.height)
    keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
    return torch.from_numpy(np.ascontiguousarray(boxes[keep]))
