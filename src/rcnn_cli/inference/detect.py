"""The Fast R-CNN detection engine (paper §3): one conv pass per image, the RoI head over its proposals,
then per-class NMS. Writes the ``detections/`` folder (docs/FORMATS.md, "## detections"):

    detections.json        COCO results for all images (image_id, category_id, bbox xywh, score)
    per_image/<id>.json    one image's detections with class names and xyxy boxes
    pictures/<id>.jpg      the image with labelled boxes (class name + score)
    timing.json            seconds per stage (Fig. 2 of the paper)
    manifest.json          what made the folder; a rerun with the same settings resumes

The model is anything that follows the ``rcnn_cli.models.FastRCNN`` contract: ``features(images)``,
``head(features, rois)``, and ``pool``/``fc6``/``fc7`` modules (timed by hooks).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rcnn_cli.errors import DataError, RcnnError
from rcnn_cli.inference.postprocess import ImageDetections, PostprocessConfig, postprocess_detections
from rcnn_cli.inference.timing import StageTimer

MANIFEST_KIND = "detections"
FORMAT_VERSION = 1

#: (record, rgb image or None) -> proposals float32 [R, 4] in original pixels, best first.
ProposalSource = Callable[[Any, "np.ndarray | None"], np.ndarray]


@dataclass(frozen=True)
class DetectConfig:
    """Test-time settings. ``scale``/``max_size`` None: the model's own (first) training scale."""

    scale: int | None = None
    max_size: int | None = None
    max_proposals: int = 2000
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)


class Detector:
    """Detections for one image at a time, timing every stage into ``timer``."""

    def __init__(
        self,
        model: nn.Module,
        class_names: Sequence[str],
        config: DetectConfig = DetectConfig(),
        device: torch.device | str = "cpu",
        model_config: Any = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.class_names = tuple(class_names)
        self.device = torch.device(device)
        cfg = model_config if model_config is not None else getattr(model, "config", None)
        scales = tuple(getattr(cfg, "scales", (600,)))
        self.scale = config.scale or int(scales[0])
        self.max_size = config.max_size or int(getattr(cfg, "max_size", 1000))
        self.pixel_mean = tuple(getattr(cfg, "pixel_mean", (0.485, 0.456, 0.406)))
        self.pixel_std = tuple(getattr(cfg, "pixel_std", (0.229, 0.224, 0.225)))
        self.config = config
        self.timer = StageTimer(self.device)

    def clean_proposals(self, proposals: np.ndarray, height: int, width: int) -> torch.Tensor:
        """proposals: float [R, 4] xyxy in original pixels -> Tensor[R', 4]: the first ``max_proposals``,
        clipped to the image, without those that have no area (nothing to pool, no size to regress from).
        A copy: the caller's array is neither clipped in place nor required to be writable."""
        boxes = torch.tensor(np.asarray(proposals, dtype=np.float32).reshape(-1, 4))
        boxes = boxes[: self.config.max_proposals] if self.config.max_proposals > 0 else boxes
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]

    def network_inputs(self, rgb: np.ndarray, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb: uint8 [H, W, 3], boxes: Tensor[R, 4] in original pixels -> (image Tensor[1, 3, H', W']
        scaled and normalized, rois Tensor[R, 5] ``(0, x1, y1, x2, y2)`` in scaled pixels), on the device."""
        from rcnn_cli.models.preprocess import prepare_image

        image, im_scale = prepare_image(rgb, self.scale, self.max_size, self.pixel_mean, self.pixel_std)
        boxes = boxes.to(self.device)
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes * im_scale], dim=1)
        return image.to(self.device)[None], rois

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray, proposals: np.ndarray) -> ImageDetections:
        """rgb: uint8 [H, W, 3]; proposals: float [R, 4] xyxy in original pixels -> detections."""
        height, width = rgb.shape[:2]
        boxes = self.clean_proposals(proposals, height, width)
        self.timer.images += 1
        if len(boxes) == 0:
            return _no_detections(self.device)
        with self.timer.stage("preprocess"):
            boxes = boxes.to(self.device)  # once: the RoIs and the box decoding both use it there
            image, rois = self.network_inputs(rgb, boxes)
        with self.timer.stage("conv"):
            features = self.model.features(image)
        with self.timer.timed_head(self.model):
            logits, deltas = self.model.head(features, rois)
        with self.timer.stage("nms"):
            return postprocess_detections(logits, deltas, boxes, height, width, self.config.postprocess)


def _no_detections(device: torch.device) -> ImageDetections:
    return ImageDetections(
        torch.zeros((0, 4), device=device),
        torch.zeros(0, device=device),
        torch.zeros(0, dtype=torch.int64, device=device),
    )


def image_json(record: Any, coco_id: int | str, dets: ImageDetections, class_names: Sequence[str]) -> dict:
    """The per-image JSON document (boxes xyxy in original pixels, best first)."""
    return {
        "image_id": record.image_id,
        "coco_image_id": coco_id,
        "file": str(record.path),
        "width": int(record.width),
        "height": int(record.height),
        "detections": [
            {
                "label": int(label),
                "class": class_names[int(label) - 1],
                "score": round(float(score), 5),
                "box": [round(float(v), 2) for v in box],
            }
            for box, score, label in zip(
                dets.boxes.tolist(), dets.scores.tolist(), dets.labels.tolist(), strict=True
            )
        ],
    }


def detections_from_json(doc: dict[str, Any]) -> ImageDetections:
    """Inverse of :func:`image_json` (for resuming)."""
    dets = doc["detections"]
    return ImageDetections(
        boxes=torch.tensor([d["box"] for d in dets], dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor([d["score"] for d in dets], dtype=torch.float32),
        labels=torch.tensor([d["label"] for d in dets], dtype=torch.int64),
    )


@dataclass
class DetectSummary:
    """What a run did. ``results``: COCO results entries of all processed images."""

    results: list[dict[str, Any]]
    processed: int
    resumed: int
    skipped: list[str]
    timer: StageTimer


def detect_records(
    detector: Detector,
    records: Sequence[Any],
    proposal_source: ProposalSource,
    out_dir: str | Path,
    *,
    params: dict[str, Any],
    draw: bool = True,
    reporter: Any = None,
    overwrite: bool = False,
    draw_threshold: float = 0.5,
) -> DetectSummary:
    """Detect on every record, writing ``out_dir`` as described in the module docstring.

    A bad image or missing proposals for one image is reported through ``reporter.log`` and skipped; the
    rest are processed. Images whose per-image JSON exists from a compatible earlier run are reused;
    an earlier run with other ``params`` is refused unless ``overwrite`` (which deletes its outputs).
    """
    from rcnn_cli.artifacts import (
        Manifest,
        atomic_write_json,
        check_distinct_stems,
        read_manifest,
        safe_stem,
        write_manifest,
    )
    from rcnn_cli.data import read_record
    from rcnn_cli.errors import ArtifactError
    from rcnn_cli.evaluation.coco_format import coco_image_ids, detections_to_coco
    from rcnn_cli.inference.drawing import draw_detections

    out = Path(out_dir)
    check_distinct_stems((r.image_id for r in records), out)
    per_image = out / "per_image"
    pictures = out / "pictures"
    per_image.mkdir(parents=True, exist_ok=True)
    if draw:
        pictures.mkdir(exist_ok=True)
    if (out / "manifest.json").exists():
        try:
            read_manifest(out, MANIFEST_KIND).check_compatible(out, params)
        except ArtifactError as exc:
            if not overwrite:
                raise ArtifactError(f"{exc}; choose another -o folder, or --overwrite") from None
            overwrite = True
        else:
            overwrite = False  # same settings: resume
    if overwrite:
        for stale in [*per_image.glob("*.json"), *pictures.glob("*.jpg")]:
            stale.unlink()
    write_manifest(out, Manifest(kind=MANIFEST_KIND, format_version=FORMAT_VERSION, params=params))

    ids = coco_image_ids(r.image_id for r in records)
    timer = detector.timer
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    processed = resumed = 0
    for record in records:
        json_path = per_image / f"{safe_stem(record.image_id)}.json"
        if json_path.exists():
            try:
                dets = detections_from_json(json.loads(json_path.read_text()))
                resumed += 1
            except (OSError, ValueError, KeyError):
                dets = None  # damaged: detect again
            if dets is not None:
                results += detections_to_coco(
                    ids[record.image_id], dets.boxes.numpy(), dets.scores, dets.labels
                )
                _advance(reporter)
                continue
        try:
            with timer.stage("read"):
                rgb = read_record(record)
            with timer.stage("proposals"):
                boxes = proposal_source(record, rgb)
        except DataError as exc:
            skipped.append(str(exc))
            if reporter is not None:
                reporter.log(f"skipped: {exc}")
            _advance(reporter)
            continue
        dets = detector.detect(rgb, boxes)
        dets = ImageDetections(dets.boxes.cpu(), dets.scores.cpu(), dets.labels.cpu())
        atomic_write_json(json_path, image_json(record, ids[record.image_id], dets, detector.class_names))
        if draw:
            picture = pictures / f"{safe_stem(record.image_id)}.jpg"
            draw_detections(rgb, dets, detector.class_names, picture, draw_threshold)
        results += detections_to_coco(ids[record.image_id], dets.boxes.numpy(), dets.scores, dets.labels)
        processed += 1
        _advance(reporter, len(dets))
    atomic_write_json(out / "detections.json", results)
    atomic_write_json(out / "timing.json", timer.to_dict())
    return DetectSummary(results=results, processed=processed, resumed=resumed, skipped=skipped, timer=timer)


def _advance(reporter: Any, found: int | None = None) -> None:
    if reporter is not None:
        reporter.advance(extra="" if found is None else f"{found} dets")


def folder_proposals(folder: str | Path) -> ProposalSource:
    """Proposals read from a proposals folder (``rcnn propose``'s output, docs/FORMATS.md)."""
    from rcnn_cli.proposals import ProposalStore

    store = ProposalStore(folder)

    def read(record: Any, _rgb: np.ndarray | None) -> np.ndarray:
        return store.read(record.image_id).boxes

    return read


PROPOSAL_METHODS = ("selective-search", "selectivesearch", "opencv", "dense")


def method_proposals(name: str, mode: str = "fast", max_proposals: int = 2000) -> ProposalSource:
    """Proposals computed on the fly by a :mod:`rcnn_cli.proposals` method (timed as "proposals")."""
    from rcnn_cli.proposals import (
        DenseWindows,
        OpenCVSelectiveSearch,
        SelectiveSearch,
        SelectivesearchPackage,
    )

    methods = {
        "selective-search": lambda: SelectiveSearch(mode=mode, max_proposals=max_proposals),
        "selectivesearch": lambda: SelectivesearchPackage(max_proposals=max_proposals),
        "opencv": lambda: OpenCVSelectiveSearch(mode=mode, max_proposals=max_proposals),
        "dense": lambda: DenseWindows(max_proposals=max_proposals),
    }
    if name not in methods:
        raise RcnnError(f"unknown proposal method {name!r}; choose one of: {', '.join(methods)}")
    method = methods[name]()

    def propose(record: Any, rgb: np.ndarray | None) -> np.ndarray:
        return method.propose(rgb, record).boxes

    return propose
