"""Reading a proposals folder made by ``rcnn propose``: ``<image_id>.npz`` (``boxes`` float32 [P, 4] in
original pixels, ``scores`` [P]) per image plus ``manifest.json`` (kind ``proposals``).

Everything is checked before training starts, so a missing, partial or stale folder is one clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.errors import ArtifactError
from rcnn_cli.proposals.storage import KIND, file_name


def load_proposals(folder: str | Path, records: list, max_proposals: int | None = None) -> dict[str, Tensor]:
    """{image_id: Tensor[P, 4]} for every record; the first ``max_proposals`` boxes (highest score first).

    Raises ArtifactError when the folder or manifest is missing, when images have no file (partial), or
    when a file does not fit its image (stale: made for other images).
    """
    from rcnn_cli.artifacts import read_manifest

    folder = Path(folder)
    read_manifest(folder, KIND)
    missing = [r.image_id for r in records if not (folder / file_name(r.image_id)).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ArtifactError(
            f"{folder}: partial proposals folder: {len(missing)} of {len(records)} images have no "
            f"<image_id>.npz ({shown}); rerun 'rcnn propose' on this dataset to complete it"
        )
    out: dict[str, Tensor] = {}
    for record in records:
        path = folder / file_name(record.image_id)
        try:
            with np.load(path, allow_pickle=False) as data:
                boxes = np.asarray(data["boxes"], dtype=np.float32)
                scores = np.asarray(data["scores"]) if "scores" in data else None
                size = tuple(int(v) for v in data["image_size"]) if "image_size" in data else None
        except Exception as exc:
            raise ArtifactError(f"{path}: unreadable proposals file ({type(exc).__name__}: {exc})") from None
        if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
            raise ArtifactError(f"{path}: 'boxes' must be finite float [P, 4], got shape {boxes.shape}")
        if size is not None and size != (record.height, record.width):
            raise ArtifactError(
                f"{path}: stale proposals: made for a {size[1]}x{size[0]} image, {record.path.name} is "
                f"{record.width}x{record.height}; rerun 'rcnn propose' on this dataset"
            )
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
        if scores is not None and len(scores) == len(boxes) and len(boxes) > 1:
            boxes = boxes[np.argsort(-scores, kind="stable")]
        if max_proposals is not None:
            boxes = boxes[:max_proposals]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, record.width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, record.height)
        keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        out[record.image_id] = torch.from_numpy(np.ascontiguousarray(boxes[keep]))
    return out
