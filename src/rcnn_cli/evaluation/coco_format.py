"""Our datasets and detections in COCO's JSON vocabulary (kept in memory; nothing written here).

The one mapping every stage shares (documented in docs/FORMATS.md, "## detections"):

- COCO ``image_id`` = our ``ImageRecord.image_id`` as it is (a string), except when EVERY id of the image
  set is a canonical decimal integer ("42", not "0042"): then they are ints, so ids read from a COCO file go
  back to COCO unchanged, while VOC names such as "000004" or "BloodImage_00001" stay readable strings.
  (All or nothing: pycocotools sorts the ids, and Python cannot sort ints and strings together.)
  Readers here accept either form (they compare ``str(image_id)``).
- COCO ``category_id`` = our label index 1..K (background 0 never appears).
- ``bbox`` = [x1, y1, x2 - x1, y2 - y1] in our continuous pixel convention; ``area`` = w * h.
- ``difficult`` ground truth becomes ``iscrowd = 1``: the one flag pycocotools honours to ignore
  detections matched to a box (neither TP nor FP), as VOC does for difficult objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.errors import DataError
from rcnn_cli.evaluation.voc_ap import Detections


def _canonical_int(image_id: str) -> bool:
    return image_id.isdigit() and image_id.isascii() and str(int(image_id)) == image_id


def coco_image_ids(image_ids: Iterable[str]) -> dict[str, int | str]:
    """Our string image ids -> COCO image ids: all ints when all are canonical decimals, else the strings."""
    ids = list(image_ids)
    if ids and all(_canonical_int(i) for i in ids):
        return {i: int(i) for i in ids}
    return {i: i for i in ids}


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)


def dataset_to_coco(records: Sequence[Any], class_names: Sequence[str]) -> dict[str, Any]:
    """A COCO ground-truth dict (images, annotations, categories) for ``records`` (ImageRecord-like)."""
    images, annotations = [], []
    ids = coco_image_ids(r.image_id for r in records)
    for record in records:
        img_id = ids[record.image_id]
        images.append(
            {
                "id": img_id,
                "width": int(record.width),
                "height": int(record.height),
                "file_name": str(record.path),
            }
        )
        xywh = xyxy_to_xywh(record.boxes)
        difficult = np.asarray(record.difficult, dtype=bool).reshape(-1)
        for box, label, diff in zip(xywh, np.asarray(record.labels).reshape(-1), difficult, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,  # pycocotools treats id 0 as "no id"
                    "image_id": img_id,
                    "category_id": int(label),
                    "bbox": [float(v) for v in box],
                    "area": float(box[2] * box[3]),
                    "iscrowd": int(diff),
                }
            )
    categories = [{"id": k, "name": name} for k, name in enumerate(class_names, start=1)]
    return {"images": images, "annotations": annotations, "categories": categories}


def detections_to_coco(
    image_id: int | str, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray
) -> list[dict[str, Any]]:
    """COCO results entries for one image (boxes float [D, 4] xyxy, scores [D], labels [D] in 1..K).

    ``image_id`` is the COCO id from :func:`coco_image_ids` over the whole image set."""
    return [
        {
            "image_id": image_id,
            "category_id": int(label),
            "bbox": [round(float(v), 2) for v in box],
            "score": round(float(score), 5),
        }
        for box, score, label in zip(xyxy_to_xywh(boxes), np.asarray(scores), np.asarray(labels), strict=True)
    ]


def read_coco_results(path: str | Path) -> list[dict[str, Any]]:
    """Read and check a COCO results JSON (a list of {image_id, category_id, bbox, score})."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "detections file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not a readable JSON file ({exc})") from None
    if not isinstance(entries, list):
        raise DataError(path, "expected a JSON list of COCO results (image_id, category_id, bbox, score)")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"image_id", "category_id", "bbox", "score"} <= entry.keys():
            raise DataError(path, f"entry {i} lacks image_id, category_id, bbox or score")
        bbox = entry["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            raise DataError(path, f"entry {i}: bbox must be 4 numbers [x, y, w, h]")
        if not all(np.isfinite(bbox)) or not np.isfinite(entry["score"]):
            raise DataError(path, f"entry {i}: bbox or score is not finite")
    return entries


def results_to_detections(
    entries: Iterable[dict[str, Any]], records: Sequence[Any], num_classes: int, source: str | Path = ""
) -> Detections:
    """Flat :class:`Detections` indexed like ``records``; entries for images outside ``records`` are an error
    (they usually mean the wrong split or dataset)."""
    index = {str(r.image_id): i for i, r in enumerate(records)}
    entries = list(entries)
    if not entries:
        return Detections.empty()
    unknown = {str(e["image_id"]) for e in entries} - index.keys()
    if unknown:
        example = sorted(map(str, unknown))[:3]
        raise DataError(
            source or None,
            f"{len(unknown)} image id(s) not in the dataset split (e.g. {', '.join(example)}); "
            "wrong --dataset or --split?",
        )
    labels = np.array([e["category_id"] for e in entries], dtype=np.int64)
    if labels.min() < 1 or labels.max() > num_classes:
        raise DataError(source or None, f"category_id must be in 1..{num_classes} (the dataset's classes)")
    xywh = np.array([e["bbox"] for e in entries], dtype=np.float64)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return Detections(
        image_index=np.array([index[str(e["image_id"])] for e in entries], dtype=np.int64),
        labels=labels,
        scores=np.array([e["score"] for e in entries], dtype=np.float64),
        boxes=boxes,
    )
