"""The ``detections/`` folder that ``rcnn detect`` writes (docs/FORMATS.md, "## detections"):

detections.json        COCO results for all images (image_id, category_id, bbox xywh, score)
per_image/<id>.json    one image's detections with class names and xyxy boxes
pictures/<id>.jpg      the image with labelled boxes (class name + score)
timing.json            seconds per stage (Fig. 2 of the paper)
manifest.json          what made the folder; a rerun with the same settings resumes
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rcnn_cli.errors import DataError
from rcnn_cli.inference.detect import Detector
from rcnn_cli.inference.postprocess import ImageDetections
from rcnn_cli.inference.timing import StageTimer
from rcnn_cli.proposals.sources import ProposalSource

MANIFEST_KIND = "detections"
FORMAT_VERSION = 1


def image_json(
    record: Any,
    coco_id: int | str,
    dets: ImageDetections,
    class_names: Sequence[str],
    fingerprint: str = "",
) -> dict:
    """The per-image JSON document (boxes xyxy in original pixels, best first); ``fingerprint`` is the
    image file's (rcnn_cli.fingerprints), so that a rerun never keeps detections of another image."""
    return {
        "image_id": record.image_id,
        "coco_image_id": coco_id,
        "file": str(record.path),
        "image_fingerprint": fingerprint,
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


def detection_params(
    model_path: str | Path, detector: Detector, svd_ranks: dict[str, int], proposals: str
) -> dict[str, Any]:
    """What makes a detections folder what it is (its manifest's ``params``): the model file's bytes,
    the SVD ranks it runs with, the test-time settings and where the proposals come from. A rerun with
    the same params resumes; anything else is refused (or replaced with ``--overwrite``)."""
    from rcnn_cli.artifacts import file_digest

    post = detector.config.postprocess
    # box_voting only when on: a folder written before the option existed still resumes.
    voting = {"box_voting": post.box_voting} if post.box_voting > 0 else {}
    if detector.config.refine > 0:
        voting["refine"] = detector.config.refine
    return {
        "model": file_digest(model_path),
        "svd_ranks": dict(svd_ranks),
        "scale": detector.scale,
        "max_size": detector.max_size,
        "max_proposals": detector.config.max_proposals,
        "nms": post.nms_threshold,
        "score_threshold": post.score_threshold,
        "max_detections": post.max_detections,
        "proposals": proposals,
        **voting,
    }


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
    proposal_source: ProposalSource | None,
    out_dir: str | Path,
    *,
    params: dict[str, Any],
    draw: bool = True,
    reporter: Any = None,
    overwrite: bool = False,
    draw_threshold: float = 0.5,
    origin: dict[str, Any] | None = None,
) -> DetectSummary:
    """Detect on every record, writing ``out_dir`` as described in the module docstring.
    ``proposal_source`` None: the detector's model proposes with its own RPN (a Faster R-CNN).
    ``origin``: where the images and the model came from, kept in the manifest's ``extra``.

    A bad image or missing proposals for one image is reported through ``reporter.log`` and skipped; the
    rest are processed. Images whose per-image JSON exists from a compatible earlier run are reused;
    an earlier run with other ``params`` is refused unless ``overwrite``: then the new folder is built
    beside the old one and swapped in when complete (:mod:`rcnn_cli.folder_swap`), so that a killed run
    leaves the old results as they were. The folder is locked for the run: a second writer is refused.
    """
    from rcnn_cli.folder_swap import finish_swap, swap_in
    from rcnn_cli.locks import writing

    out = Path(out_dir)
    finish_swap(out)
    with writing(out, exclusive=True):
        target = _target_folder(out, params, overwrite)
        summary = _detect_into(
            target,
            detector,
            records,
            proposal_source,
            params,
            draw,
            reporter,
            overwrite,
            draw_threshold,
            origin or {},
        )
        if target != out:
            swap_in(out)
    return summary


def _target_folder(out: Path, params: dict[str, Any], overwrite: bool) -> Path:
    """``out`` itself (new, or made with these params: resume), or with ``overwrite`` the folder beside
    it where its replacement is built (resumed too when a killed run left it with these params)."""
    import shutil

    from rcnn_cli.artifacts import read_manifest
    from rcnn_cli.errors import ArtifactError
    from rcnn_cli.folder_swap import next_folder

    if not (out / "manifest.json").exists():
        return out
    try:
        read_manifest(out, MANIFEST_KIND).check_compatible(out, params)
        return out
    except ArtifactError as exc:
        if not overwrite:
            raise ArtifactError(f"{exc}; choose another -o folder, or --overwrite") from None
    staging = next_folder(out)
    if (staging / "manifest.json").exists():
        try:
            read_manifest(staging, MANIFEST_KIND).check_compatible(staging, params)
            return staging
        except ArtifactError:
            pass
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def _detect_into(
    out: Path,
    detector: Detector,
    records: Sequence[Any],
    proposal_source: ProposalSource | None,
    params: dict[str, Any],
    draw: bool,
    reporter: Any,
    replace_foreign: bool,
    draw_threshold: float,
    origin: dict[str, Any],
) -> DetectSummary:
    from rcnn_cli.artifacts import (
        Manifest,
        atomic_write_json,
        check_distinct_stems,
        safe_stem,
        write_manifest,
    )
    from rcnn_cli.data import read_record
    from rcnn_cli.errors import ArtifactError
    from rcnn_cli.evaluation.coco_format import coco_image_ids, detections_to_coco
    from rcnn_cli.fingerprints import Fingerprints, describe_mismatch
    from rcnn_cli.inference.drawing import draw_detections

    check_distinct_stems((r.image_id for r in records), out)
    per_image = out / "per_image"
    pictures = out / "pictures"
    per_image.mkdir(parents=True, exist_ok=True)
    if draw:
        pictures.mkdir(exist_ok=True)
    # detections.json is written last; until then an interrupted folder has none, never a stale one.
    (out / "detections.json").unlink(missing_ok=True)
    manifest = Manifest(kind=MANIFEST_KIND, format_version=FORMAT_VERSION, params=params, extra=origin)
    write_manifest(out, manifest)

    ids = coco_image_ids(r.image_id for r in records)
    timer = detector.timer
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    processed = resumed = 0
    with Fingerprints() as fingerprints:
        for record in records:
            json_path = per_image / f"{safe_stem(record.image_id)}.json"
            fingerprint = fingerprints.of_existing(record.path)
            if json_path.exists():
                try:
                    doc = json.loads(json_path.read_text())
                    dets = detections_from_json(doc)
                except (OSError, ValueError, KeyError, TypeError):
                    dets = None  # damaged: detect again
                stored = doc.get("image_fingerprint", "") if dets is not None else ""
                if dets is not None and stored and fingerprint and stored != fingerprint:
                    if not replace_foreign:
                        raise ArtifactError(
                            describe_mismatch(json_path, record.path, stored)
                            + "; choose another -o folder, or --overwrite"
                        )
                    dets = None  # --overwrite: detect this image again
                if dets is not None:
                    resumed += 1
                    results += detections_to_coco(
                        ids[record.image_id], dets.boxes.numpy(), dets.scores, dets.labels
                    )
                    _advance(reporter)
                    continue
            try:
                with timer.stage("read"):
                    rgb = read_record(record)
                boxes = None  # a Faster R-CNN proposes in detect(), timed as "rpn" and "proposal_layer"
                if proposal_source is not None:
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
            if draw:  # the picture before the JSON: an image whose JSON exists is finished, picture and all
                picture = pictures / f"{safe_stem(record.image_id)}.jpg"
                draw_detections(rgb, dets, detector.class_names, picture, draw_threshold)
            document = image_json(record, ids[record.image_id], dets, detector.class_names, fingerprint)
            atomic_write_json(json_path, document)
            # The COCO entries come from what the JSON holds (rounded), as they do when a rerun resumes
            # the image: an interrupted and resumed run gives the same detections.json as one that was not.
            dets = detections_from_json(document)
            results += detections_to_coco(ids[record.image_id], dets.boxes.numpy(), dets.scores, dets.labels)
            processed += 1
            _advance(reporter, len(dets))
    atomic_write_json(out / "detections.json", results)
    atomic_write_json(out / "timing.json", timer.to_dict())
    return DetectSummary(results=results, processed=processed, resumed=resumed, skipped=skipped, timer=timer)


def _advance(reporter: Any, found: int | None = None) -> None:
    if reporter is not None:
        reporter.advance(extra="" if found is None else f"{found} dets")
