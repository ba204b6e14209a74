"""``rcnn show detections``: one image's detections drawn as ``rcnn detect`` draws them
(:func:`rcnn_cli.inference.drawing.render_detections`), read from a detections folder or found by
running a trained model on the image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.errors import ArtifactError
from rcnn_cli.inference.detections_folder import MANIFEST_KIND, detections_from_json
from rcnn_cli.inference.postprocess import ImageDetections


def read_detections(folder: Path, record: Any) -> tuple[ImageDetections, list[str]]:
    """The detections ``rcnn detect`` wrote for ``record`` into ``folder`` and the class names they use
    (label k is ``names[k - 1]``). :class:`ArtifactError` naming the file when the folder is not a
    detections folder, holds nothing for the image, or was made from another image with that id."""
    from rcnn_cli.artifacts import read_manifest, safe_stem
    from rcnn_cli.fingerprints import Fingerprints, describe_mismatch

    read_manifest(folder, MANIFEST_KIND)
    path = folder / "per_image" / f"{safe_stem(record.image_id)}.json"
    if not path.is_file():
        raise ArtifactError(f"{path}: no detections of image {record.image_id!r}; run 'rcnn detect' on it")
    try:
        document = json.loads(path.read_text())
        dets = detections_from_json(document)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a per-image detections file ({type(exc).__name__})") from None
    stored = document.get("image_fingerprint", "")
    with Fingerprints() as fingerprints:
        now = fingerprints.of_existing(record.path)
    if stored and now and stored != now:
        raise ArtifactError(describe_mismatch(path, record.path, stored))
    return dets, _class_names(document["detections"])


def _class_names(entries: Sequence[dict[str, Any]]) -> list[str]:
    """Names by label from a per-image file's entries; a label none of them uses gets 'class k'."""
    named = {int(d["label"]): str(d["class"]) for d in entries}
    return [named.get(k, f"class {k}") for k in range(1, max(named, default=0) + 1)]


def run_detector(
    model: Path, record: Any, rgb: np.ndarray, proposals: Any, device: Any
) -> tuple[ImageDetections, list[str]]:
    """Detections of a trained model on one image with ``rcnn detect``'s defaults; ``proposals`` a
    ProposalSource, or None for a Faster R-CNN to use its own RPN."""
    from rcnn_cli.errors import RcnnError
    from rcnn_cli.inference.detect import Detector
    from rcnn_cli.models import load_checkpoint

    net, meta = load_checkpoint(model, device)
    if meta.get("stage") == "rpn":
        raise RcnnError(f"{model}: an RPN trained alone has no detector; try 'rcnn show proposals'")
    detector = Detector(net, meta["class_names"], device=device, model_config=meta.get("config"))
    if proposals is None and not detector.proposes:
        raise RcnnError(f"{model}: a Fast R-CNN needs proposals: give --proposals or --proposal-method")
    boxes = proposals(record, rgb) if proposals is not None else None
    dets = detector.detect(rgb, boxes)
    return ImageDetections(dets.boxes.cpu(), dets.scores.cpu(), dets.labels.cpu()), list(detector.class_names)


def draw_detection_picture(
    rgb: np.ndarray, dets: ImageDetections, class_names: Sequence[str], path: Path, min_score: float
) -> Path:
    """Write ``rcnn detect``'s picture of ``dets`` on ``rgb`` uint8 [H, W, 3] to ``path`` as a PNG,
    atomically; boxes scoring below ``min_score`` are left out."""
    import cv2

    from rcnn_cli.artifacts import atomic_write_bytes
    from rcnn_cli.inference.drawing import render_detections

    canvas = render_detections(rgb, dets, class_names, min_score)
    ok, encoded = cv2.imencode(".png", canvas)
    if not ok:
        raise RuntimeError(f"cv2 could not encode {path.name}")
    atomic_write_bytes(path, encoded.tobytes())
    return path


def detections_picture(
    picked: Any,
    path: Path,
    *,
    detections: Path | None = None,
    model: Path | None = None,
    proposals: Any = None,
    device: Any = "cpu",
    min_score: float = 0.5,
) -> Path:
    """Write the detections picture of ``picked``'s image, from the detections folder ``detections``
    or by running ``model`` (with ``proposals``, a ProposalSource, or a Faster R-CNN's own RPN)."""
    from rcnn_cli.data import read_record
    from rcnn_cli.errors import RcnnError

    if (detections is None) == (model is None):
        raise RcnnError("give --detections FOLDER (made by rcnn detect) or --model MODEL (one of them)")
    rgb = read_record(picked.record)
    if detections is not None:
        dets, names = read_detections(detections, picked.record)
    else:
        assert model is not None
        dets, names = run_detector(model, picked.record, rgb, proposals, device)
    return draw_detection_picture(rgb, dets, names, path, min_score)
