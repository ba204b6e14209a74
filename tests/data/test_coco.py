"""COCO JSON: the VOC -> COCO -> load round trip on the shipped sample, and COCO's own quirks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rcnn_cli.data import load_coco, load_voc, open_dataset, sample_dataset_path, write_coco
from rcnn_cli.errors import DataError


@pytest.mark.parametrize("split", ["trainval", "test"])
def test_voc_to_coco_round_trip_on_the_sample(tmp_path: Path, split: str) -> None:
    voc = load_voc(sample_dataset_path(), split)
    assert voc.problems == () and sum(r.num_boxes for r in voc.records) > 100
    json_path = write_coco(voc, tmp_path / "out" / "sample.json")
    coco = load_coco(json_path)  # finds the images through info.image_root
    assert coco.problems == () and coco.class_names == voc.class_names == ("Platelets", "RBC", "WBC")
    assert len(coco.records) == len(voc.records)
    for a, b in zip(voc.records, coco.records, strict=True):
        assert a.path.resolve() == b.path.resolve() and (a.width, a.height) == (b.width, b.height)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.difficult, b.difficult)


def test_written_json_is_standard_coco(tmp_path: Path) -> None:
    voc = load_voc(sample_dataset_path(), "test")
    data = json.loads(write_coco(voc, tmp_path / "t.json").read_text())
    first = voc.records[0]
    anns = [a for a in data["annotations"] if a["image_id"] == data["images"][0]["id"]]
    x1, y1, x2, y2 = first.boxes[0].tolist()
    assert anns[0]["bbox"] == [x1, y1, x2 - x1, y2 - y1]
    assert anns[0]["area"] == (x2 - x1) * (y2 - y1)
    assert data["categories"][0] == {"id": 1, "name": "Platelets", "supercategory": "none"}
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])


def _coco(tmp_path: Path, images: list[dict], annotations: list[dict], categories: list[dict]) -> Path:
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def test_xywh_categories_by_id_and_iscrowd(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "img" / "a.png", 64, 48)
    path = _coco(
        tmp_path,
        [{"id": 7, "file_name": "img/a.png", "width": 64, "height": 48}],
        [
            {"id": 1, "image_id": 7, "category_id": 90, "bbox": [1.5, 2, 10, 20], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 64, 48], "iscrowd": 1},
        ],
        [{"id": 90, "name": "toothbrush"}, {"id": 3, "name": "car"}],
    )
    ds = load_coco(path)
    assert ds.class_names == ("car", "toothbrush")  # COCO's id order, numbered 1..K
    (record,) = ds.records
    assert record.image_id == "7"
    np.testing.assert_array_equal(record.boxes, [[1.5, 2, 11.5, 22], [0, 0, 64, 48]])
    np.testing.assert_array_equal(record.labels, [2, 1])
    np.testing.assert_array_equal(record.difficult, [False, True])


def test_bad_coco_annotations_are_each_reported(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "a.png", 64, 48)
    image_writer(tmp_path / "b.png", 64, 48)
    path = _coco(
        tmp_path,
        [
            {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 1, "file_name": "b.png", "width": 64, "height": 48},  # duplicate id
            {"id": 2, "file_name": "../secret.png", "width": 64, "height": 48},  # escapes the root
            {"id": 3, "file_name": "gone.png", "width": 64, "height": 48},  # missing
            {"id": 4, "file_name": "b.png", "width": 32, "height": 48},  # wrong size
        ],
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 5]},  # zero area
            {"id": 2, "image_id": 1, "category_id": 5, "bbox": [0, 0, 5, 5]},  # unknown category
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [60, 0, 10, 5]},  # outside
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, "x", 5]},  # not numbers
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},  # duplicate annotation id
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},  # fine
            {"id": 6, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},  # unknown image
        ],
        [{"id": 1, "name": "cat"}],
    )
    ds = load_coco(path)
    assert [r.image_id for r in ds.records] == ["1"]
    np.testing.assert_array_equal(ds.records[0].boxes, [[1, 1, 6, 6]])
    kinds = sorted(p.kind for p in ds.problems)
    assert kinds == sorted(
        [
            "duplicate id",
            "path escapes dataset root",
            "missing image",
            "size mismatch",
            "zero or negative area",
            "unknown class",
            "box outside image",
            "bad coordinates",
            "duplicate id",
            "bad annotation file",
        ]
    )
    with pytest.raises(DataError, match=r"ann\.json: duplicate id: annotation id 4"):
        load_coco(path, on_error="raise")


def test_not_coco_json(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{broken")
    with pytest.raises(DataError, match=r"x\.json: not valid JSON"):
        open_dataset(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=r"y\.json: not a COCO dataset file"):
        load_coco(tmp_path / "y.json")


def test_box_that_keeps_no_area_after_clipping_is_outside(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "a.png", 64, 48)
    path = _coco(
        tmp_path,
        [{"id": 1, "file_name": "a.png"}],
        [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [-1, 5, 0.5, 5],
            },  # x2 = -0.5: left of the image
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "bbox": [64.2, 5, 0.5, 5],
            },  # starts right of the image
            {
                "id": 3,
                "image_id": 1,
                "category_id": 1,
                "bbox": [-0.5, 5, 10, 5],
            },  # overshoots 0.5 px: clipped
        ],
        [{"id": 1, "name": "cat"}],
    )
    ds = load_coco(path)
    np.testing.assert_array_equal(ds.records[0].boxes, [[0, 5, 9.5, 10]])
    assert [p.kind for p in ds.problems] == ["box outside image", "box outside image"]
