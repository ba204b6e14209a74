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
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rcnn_cli.errors import DataError
from rcnn_cli.proposals.base import Proposals, finalize_boxes
from rcnn_cli.proposals.mat_check import MatStructureError, check_mat5
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


# What one image's entry holds before it is checked: raw boxes, raw scores (or None), and the
# box convention ("mat": inclusive integer pixels in --mat-layout; "xyxy": continuous).
Entry = tuple[Any, Any, str]


def _loadmat(path: Path) -> dict[str, Any]:
    import scipy.io

    try:
        data = path.read_bytes()
        check_mat5(data)  # a damaged file would crash scipy's reader, not make it raise
        return scipy.io.loadmat(io.BytesIO(data))
    except MatStructureError as exc:
        raise DataError(path, f"malformed .mat file ({exc})") from None
    except NotImplementedError:
        raise DataError(path, "MATLAB v7.3 (HDF5) files are not supported; save with -v7") from None
    except Exception as exc:  # scipy's reader fails on corrupt input with a dozen exception types
        raise DataError(path, f"unreadable .mat file ({type(exc).__name__}: {exc})") from None


def _loadjson(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise DataError(path, f"unreadable JSON ({type(exc).__name__}: {exc})") from None


def _json_entry(value: Any) -> Entry:
    """A JSON image entry: a list of boxes, or ``{"boxes": [...], "scores": [...]}``."""
    if isinstance(value, dict):
        return value.get("boxes", []), value.get("scores"), "xyxy"
    return value, None, "xyxy"


def _cells(value: Any, path: Path, name: str) -> list[Any]:
    """A collection .mat variable (a cell array, one entry per image) as a flat list."""
    try:
        return list(np.asarray(value, dtype=object).reshape(-1))
    except (TypeError, ValueError) as exc:  # a ragged struct or cell nesting numpy cannot hold
        raise DataError(path, f"variable '{name}' is not one entry per image ({exc})") from None


def _mat_image_ids(images: Any, path: Path) -> list[str]:
    """The ``images`` variable of a collection .mat (a cell or char array of ids) as strings."""
    ids = []
    for item in _cells(images, path, "images"):
        flat = _cells(item, path, "images")
        if len(flat) != 1 or not isinstance(flat[0], (str, int, np.integer)):
            raise DataError(path, f"'images' holds {item!r}, not one image id per entry")
        ids.append(str(flat[0]))
    return ids


def _load_collection(path: Path) -> dict[str, Entry]:
    """One file for many images -> {image_id: entry}; parsed once per file version."""
    stat = path.stat()
    return _parse_collection(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _parse_collection(path: Path, _mtime_ns: int, _size: int) -> dict[str, Entry]:
    # The file's mtime and size are part of the cache key: a rewritten file is parsed again.
    if path.suffix.lower() == ".mat":
        data = _loadmat(path)
        if "images" not in data or "boxes" not in data:
            raise DataError(path, "a .mat for many images needs the variables 'images' and 'boxes'")
        ids = _mat_image_ids(data["images"], path)
        boxes = _cells(data["boxes"], path, "boxes")
        if len(ids) != len(boxes):
            raise DataError(path, f"{len(ids)} images but {len(boxes)} box arrays")
        return {image_id: (b, None, "mat") for image_id, b in zip(ids, boxes, strict=True)}
    data = _loadjson(path)
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object mapping image id to boxes")
    return {str(image_id): _json_entry(entry) for image_id, entry in data.items()}


def _load_one(path: Path) -> Entry:
    suffix = path.suffix.lower()
    if suffix == ".mat":
        data = _loadmat(path)
        if "boxes" not in data:
            raise DataError(path, "no variable 'boxes' in the .mat file")
        return data["boxes"], None, "mat"
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if "boxes" not in data:
                    raise DataError(path, "no array 'boxes' in the .npz file")
                return np.asarray(data["boxes"]), data.get("scores", None), "xyxy"
        except DataError:
            raise
        except Exception as exc:  # a corrupt zip or array header fails in many ways (zlib, zipfile ...)
            raise DataError(path, f"unreadable .npz file ({type(exc).__name__}: {exc})") from None
    return _json_entry(_loadjson(path))


def _numbers(value: Any, path: Path, what: str) -> np.ndarray:
    """``value`` as a float64 array, or a DataError naming the file (strings, ragged lists, dicts ...)."""
    try:
        array = np.asarray(value)
        # Integers and floats only (a .mat cell holds objects): not text, booleans or complex.
        if array.dtype.kind not in "iufO":
            raise TypeError(f"{array.dtype} values")
        array = array.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(path, f"{what} are not numbers ({exc})") from None
    # Stored as float32: a value beyond its range would become infinite there.
    if not (np.isfinite(array) & (np.abs(array) <= np.finfo(np.float32).max)).all():
        raise DataError(path, f"{what} are not all finite float32 numbers")
    return array


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

    def find(self, image_id: str) -> tuple[Path, Entry]:
        source = Path(self.source)
        if source.is_file():
            entry = _load_collection(source).get(image_id)
            if entry is None:
                raise DataError(source, f"no proposals for image {image_id!r}")
            return source, entry
        for stem in self._stems(source, image_id):
            for name in (f"{stem}_boxes.mat", f"{stem}.mat", f"{stem}.npz", f"{stem}.json"):
                path = source / name
                if path.is_file():
                    return path, _load_one(path)
        raise DataError(
            source, f"no proposals file for image {image_id!r} ({image_id}_boxes.mat, .npz, .json)"
        )

    @staticmethod
    def _stems(source: Path, image_id: str) -> list[str]:
        """File stems to look for: the id itself when it names a file inside ``source`` (other tools
        write ``<id>_boxes.mat``, perhaps in subfolders), then the id as our own folders store it."""
        from rcnn_cli.artifacts import safe_stem
        from rcnn_cli.data.records import inside_root

        stems = [image_id] if image_id and inside_root(source, image_id) is not None else []
        return [*stems, safe_stem(image_id)] if safe_stem(image_id) != image_id else stems

    def propose(self, image: np.ndarray | None, record: ImageRecord) -> Proposals:
        path, (raw, raw_scores, kind) = self.find(record.image_id)
        raw = _numbers(raw, path, f"boxes for {record.image_id!r}")
        if raw.size and (raw.ndim != 2 or raw.shape[1] != 4):
            raise DataError(path, f"boxes for {record.image_id!r} have shape {raw.shape}, expected [N, 4]")
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
        if raw_scores is None:
            scores = Proposals.ranked(boxes).scores
        else:
            scores = _numbers(raw_scores, path, f"scores for {record.image_id!r}").reshape(-1)
            if len(scores) != len(boxes):
                raise DataError(path, f"{len(boxes)} boxes but {len(scores)} scores for {record.image_id!r}")
            order = np.argsort(-scores, kind="stable")
            boxes, scores = boxes[order], scores[order]
        return finalize_boxes(boxes, scores, width, height, self.min_size, self.max_proposals)
