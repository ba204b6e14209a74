"""``rcnn propose --method file``: import precomputed proposals.

Sources (``--from``):
* a folder with one file per image, named ``<image_id>_boxes.mat``, ``<image_id>.mat``,
  ``<image_id>.npz`` or ``<image_id>.json``;
* one ``.mat`` for a whole image set with the variables ``images`` (ids) and ``boxes``
  (one [N, 4] array per image), as in the VOC selective-search release;
* one ``.json`` mapping image id to ``[[x1, y1, x2, y2], ...]`` or to
  ``{"boxes": [...], "scores": [...]}``.

``.mat`` boxes are integer pixel indices, inclusive, in one of two layouts (``--mat-layout``):
* ``x1y1x2y2-0based``: the original Fast R-CNN demo files (data/demo/*_boxes.mat);
* ``y1x1y2x2-1based``: the VOC 2007 selective-search release (selective_search_data/*.mat).
Both become continuous ``x1, y1, x2 + 1, y2 + 1`` (0-based). ``.npz`` (``boxes``, optional
``scores``, like our own output) and ``.json`` boxes are already continuous xyxy.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rcnn_cli.errors import DataError
from rcnn_cli.proposals.base import Proposals, finalize_boxes
from rcnn_cli.proposals.mat_layouts import MAT_LAYOUTS

if TYPE_CHECKING:
    from rcnn_cli.data import ImageRecord

# Share of boxes allowed to reach outside the image by more than a pixel before the
# import is refused: more than that means the wrong layout (or file) was chosen.
_MAX_OUTSIDE_FRACTION = 0.05


def mat_to_xyxy(raw: np.ndarray, layout: str) -> np.ndarray:
    """Integer inclusive .mat boxes [N, 4] in ``layout`` -> continuous float32 xyxy [N, 4]."""
    raw = np.asarray(raw, dtype=np.float64).reshape(-1, 4)
    if layout == "x1y1x2y2-0based":
        x1, y1, x2, y2 = raw.T
    elif layout == "y1x1y2x2-1based":
        y1, x1, y2, x2 = raw.T - 1.0
    else:
        raise ValueError(f"mat layout {layout!r}: choose from {', '.join(MAT_LAYOUTS)}")
    return np.stack([x1, y1, x2 + 1.0, y2 + 1.0], axis=1).astype(np.float32)


def _loadmat(path: Path) -> dict[str, Any]:
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(path, "MATLAB v7.3 (HDF5) files are not supported; save with -v7") from None
    except (OSError, ValueError, TypeError, MatReadError) as exc:
        raise DataError(path, f"unreadable .mat file ({exc})") from None


@functools.lru_cache(maxsize=2)
def _load_collection(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None, str]]:
    """One file for many images -> {image_id: (raw boxes, scores or None, kind)}."""
    out: dict[str, tuple[np.ndarray, np.ndarray | None, str]] = {}
    if path.suffix.lower() == ".mat":
        data = _loadmat(path)
        if "images" not in data or "boxes" not in data:
            raise DataError(path, "a .mat for many images needs the variables 'images' and 'boxes'")
        ids = [str(np.asarray(i).reshape(-1)[0]) for i in np.asarray(data["images"]).reshape(-1)]
        boxes = list(np.asarray(data["boxes"], dtype=object).reshape(-1))
        if len(ids) != len(boxes):
            raise DataError(path, f"{len(ids)} images but {len(boxes)} box arrays")
        for image_id, b in zip(ids, boxes, strict=True):
            out[image_id] = (np.asarray(b), None, "mat")
        return out
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object mapping image id to boxes")
    for image_id, entry in data.items():
        if isinstance(entry, dict):
            scores = entry.get("scores")
            out[str(image_id)] = (
                np.asarray(entry.get("boxes", []), np.float64),
                None if scores is None else np.asarray(scores, np.float64),
                "xyxy",
            )
        else:
            out[str(image_id)] = (np.asarray(entry, np.float64), None, "xyxy")
    return out


def _load_one(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    suffix = path.suffix.lower()
    if suffix == ".mat":
        data = _loadmat(path)
        if "boxes" not in data:
            raise DataError(path, "no variable 'boxes' in the .mat file")
        return np.asarray(data["boxes"]), None, "mat"
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if "boxes" not in data:
                    raise DataError(path, "no array 'boxes' in the .npz file")
                scores = data.get("scores", None)
                return np.asarray(data["boxes"]), scores, "xyxy"
        except (OSError, ValueError) as exc:
            raise DataError(path, f"unreadable .npz file ({exc})") from None
    # A per-image .json: a list of boxes, or {"boxes": [...], "scores": [...]}.
    try:
        single = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"unreadable JSON ({exc})") from None
    if isinstance(single, dict):
        scores = single.get("scores")
        return (
            np.asarray(single.get("boxes", []), np.float64),
            None if scores is None else np.asarray(scores, np.float64),
            "xyxy",
        )
    return np.asarray(single, np.float64), None, "xyxy"


@dataclass(frozen=True)
class FileProposals:
    """Proposals read from ``source`` (a folder of per-image files or one collection file)."""

    source: str
    mat_layout: str = "x1y1x2y2-0based"
    max_proposals: int = 2000
    min_size: float = 0.0
    name: str = field(default="file", init=False)
    needs_image: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.mat_layout not in MAT_LAYOUTS:
            raise ValueError(f"mat layout {self.mat_layout!r}: choose from {', '.join(MAT_LAYOUTS)}")
        if not Path(self.source).exists():
            raise DataError(self.source, "no such proposals file or folder")

    def params(self) -> dict[str, Any]:
        return {
            "source": str(Path(self.source).resolve()),
            "mat_layout": self.mat_layout,
            "max_proposals": self.max_proposals,
            "min_size": self.min_size,
        }

    def find(self, image_id: str) -> tuple[Path, tuple[np.ndarray, np.ndarray | None, str]]:
        source = Path(self.source)
        if source.is_file():
            entry = _load_collection(source).get(image_id)
            if entry is None:
                raise DataError(source, f"no proposals for image {image_id!r}")
            return source, entry
        for name in (f"{image_id}_boxes.mat", f"{image_id}.mat", f"{image_id}.npz", f"{image_id}.json"):
            path = source / name
            if path.is_file():
                return path, _load_one(path)
        raise DataError(
            source, f"no proposals file for image {image_id!r} ({image_id}_boxes.mat, .npz, .json)"
        )

    def propose(self, image: np.ndarray | None, record: ImageRecord) -> Proposals:
        path, (raw, scores, kind) = self.find(record.image_id)
        raw = np.asarray(raw, dtype=np.float64)
        if raw.size and (raw.ndim != 2 or raw.shape[1] != 4):
            raise DataError(path, f"boxes for {record.image_id!r} have shape {raw.shape}, expected [N, 4]")
        if raw.size and not np.isfinite(raw).all():
            raise DataError(path, f"boxes for {record.image_id!r} are not all finite")
        boxes = mat_to_xyxy(raw, self.mat_layout) if kind == "mat" else raw.reshape(-1, 4).astype(np.float32)
        width, height = (
            (image.shape[1], image.shape[0]) if image is not None else (record.width, record.height)
        )
        outside = (
            (boxes[:, 0] < -1) | (boxes[:, 1] < -1) | (boxes[:, 2] > width + 1) | (boxes[:, 3] > height + 1)
        )
        if len(boxes) and outside.mean() > _MAX_OUTSIDE_FRACTION:
            hint = " (wrong --mat-layout?)" if kind == "mat" else ""
            raise DataError(
                path,
                f"{int(outside.sum())} of {len(boxes)} boxes for {record.image_id!r} lie outside its "
                f"{width}x{height} image{hint}",
            )
        if scores is None:
            scores = Proposals.ranked(boxes).scores
        elif len(scores) != len(boxes):
            raise DataError(path, f"{len(boxes)} boxes but {len(scores)} scores for {record.image_id!r}")
        else:
            order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
            boxes, scores = boxes[order], np.asarray(scores)[order]
        return finalize_boxes(boxes, scores, width, height, self.min_size, self.max_proposals)
