"""COCO AP through pycocotools with our ids and boxes; our results JSON loads as it is."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rcnn_cli.errors import DataError
from rcnn_cli.evaluation.coco_ap import coco_evaluate
from rcnn_cli.evaluation.coco_format import (
    coco_image_ids,
    dataset_to_coco,
    detections_to_coco,
    read_coco_results,
    results_to_detections,
)


def _record(image_id: str, boxes: list[list[float]], labels: list[int], difficult: list[bool] | None = None):
    # The fields of rcnn_cli.data.ImageRecord
    return SimpleNamespace(
        image_id=image_id,
        path=Path(f"{image_id}.jpg"),
        width=100,
        height=80,
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.array(labels, dtype=np.int64),
        difficult=np.array(difficult or [False] * len(labels), dtype=bool),
    )


RECORDS = [
    _record("BloodImage_00001", [[10, 10, 40, 50], [50, 20, 90, 60]], [1, 2]),
    _record("000004", [[5, 5, 30, 30]], [1]),
    _record("42", [[0, 0, 20, 20]], [2]),
]
CLASSES = ("RBC", "WBC")


def test_image_ids_are_all_ints_or_all_strings() -> None:
    assert coco_image_ids(["42", "7"]) == {"42": 42, "7": 7}  # COCO's own ids go back unchanged
    assert coco_image_ids(["42", "000004"]) == {"42": "42", "000004": "000004"}  # an int would lose zeros
    assert coco_image_ids(["BloodImage_00001"]) == {"BloodImage_00001": "BloodImage_00001"}


def test_gt_conversion_uses_xywh_and_label_ids() -> None:
    gt = dataset_to_coco(RECORDS, CLASSES)
    assert [c["id"] for c in gt["categories"]] == [1, 2]
    first = gt["annotations"][0]
    assert first["bbox"] == [10.0, 10.0, 30.0, 40.0] and first["area"] == 1200.0
    assert {a["id"] for a in gt["annotations"]} == {1, 2, 3, 4}


def _all_results(records, jitter: float = 0.0) -> list[dict]:
    out = []
    ids = coco_image_ids(r.image_id for r in records)
    for r in records:
        out += detections_to_coco(ids[r.image_id], r.boxes + jitter, np.full(len(r.labels), 0.9), r.labels)
    return out


def test_our_results_json_is_accepted_by_loadres_as_it_is(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    path = tmp_path / "detections.json"
    path.write_text(json.dumps(_all_results(RECORDS)))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset_to_coco(RECORDS, CLASSES)
        gt.createIndex()
        dt = gt.loadRes(str(path))
    assert len(dt.getAnnIds()) == 4
    assert set(dt.getImgIds()) == {"BloodImage_00001", "000004", "42"}


def test_perfect_detections_score_one_and_misses_lower_it() -> None:
    perfect = coco_evaluate(RECORDS, CLASSES, _all_results(RECORDS))
    assert perfect.mean_ap == pytest.approx(1.0)
    np.testing.assert_allclose(perfect.ap, [1.0, 1.0])
    # Drop the only class-2 detection of image "42": class 2 recall 1/2.
    partial = [d for d in _all_results(RECORDS) if d["image_id"] != "42"]
    result = coco_evaluate(RECORDS, CLASSES, partial)
    assert result.ap[0] == pytest.approx(1.0)
    assert 0.4 < result.ap[1] < 0.6
    assert result.mean_ap == pytest.approx(np.mean(result.ap))
    # A 5-pixel shift of a 20-30 px box: still AP50, but not AP75.
    shifted = coco_evaluate(RECORDS[1:2], CLASSES, _all_results(RECORDS[1:2], jitter=4.0))
    assert shifted.ap50[0] == pytest.approx(1.0) and shifted.ap75[0] == 0.0
    assert np.isnan(shifted.ap[1])  # no class-2 ground truth in that image


def test_no_detections_is_zero_ap() -> None:
    result = coco_evaluate(RECORDS, CLASSES, [])
    assert result.mean_ap == 0.0 and list(result.ap) == [0.0, 0.0]


def test_difficult_is_ignored_like_voc() -> None:
    records = [_record("a", [[10, 10, 40, 50], [50, 20, 90, 60]], [1, 1], [False, True])]
    only_easy = detections_to_coco("a", records[0].boxes[:1], np.array([0.9]), np.array([1]))
    both = detections_to_coco("a", records[0].boxes, np.array([0.9, 0.95]), np.array([1, 1]))
    assert coco_evaluate(records, CLASSES[:1], only_easy).ap[0] == pytest.approx(1.0)
    assert coco_evaluate(records, CLASSES[:1], both).ap[0] == pytest.approx(1.0)


def test_results_round_trip_and_bad_files(tmp_path: Path) -> None:
    entries = _all_results(RECORDS)
    dets = results_to_detections(entries, RECORDS, num_classes=2)
    np.testing.assert_allclose(dets.boxes[0], RECORDS[0].boxes[0])
    assert list(dets.image_index) == [0, 0, 1, 2]
    with pytest.raises(DataError, match="not in the dataset split"):
        results_to_detections([{**entries[0], "image_id": "nope"}], RECORDS, 2, source="d.json")
    with pytest.raises(DataError, match=r"category_id must be in 1\.\.2"):
        results_to_detections([{**entries[0], "category_id": 0}], RECORDS, 2)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json"):
        read_coco_results(bad)
    bad.write_text(json.dumps([{"image_id": 1, "bbox": [1, 2, 3]}]))
    with pytest.raises(DataError, match="entry 0"):
        read_coco_results(bad)
