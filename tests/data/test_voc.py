"""load_voc on VOC's quirks and on bad annotations, each built by hand in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcnn_cli.data import load_voc, open_dataset
from rcnn_cli.errors import DataError


def _box(name: str, xmin, ymin, xmax, ymax, difficult="0") -> dict:
    return {"name": name, "bbox": (xmin, ymin, xmax, ymax), "difficult": difficult}


def test_one_based_inclusive_becomes_continuous(make_voc) -> None:
    root = make_voc({"a": [_box("cat", 1, 1, 10, 20), _box("dog", 5, 6, 7, 8, difficult="1")]})
    ds = load_voc(root, "trainval")
    (record,) = ds.records
    assert ds.class_names == ("cat", "dog")
    np.testing.assert_array_equal(record.boxes, [[0, 0, 10, 20], [4, 5, 7, 8]])
    assert record.boxes.dtype == np.float32 and record.labels.dtype == np.int64
    np.testing.assert_array_equal(record.labels, [1, 2])
    np.testing.assert_array_equal(record.difficult, [False, True])
    assert (record.width, record.height) == (64, 48) and record.image_id == "a"


def test_empty_or_missing_difficult_means_not_difficult(make_voc) -> None:
    root = make_voc({"a": [_box("cat", 1, 1, 10, 10, difficult=""), _box("cat", 2, 2, 9, 9, difficult=None)]})
    np.testing.assert_array_equal(load_voc(root, "trainval").records[0].difficult, [False, False])


def test_float_coordinates(make_voc) -> None:
    root = make_voc({"a": [_box("cat", "10.5", "3.25", "20.75", "30.0")]})
    np.testing.assert_allclose(load_voc(root, "trainval").records[0].boxes, [[9.5, 2.25, 20.75, 30.0]])


def test_boxes_on_the_border_are_kept_and_overshoot_within_one_pixel_is_clipped(make_voc) -> None:
    # 64x48 image: VOC xmax = 64 is the last column (touching the border). A 0-based tool writes xmin = 0
    # (-1 after conversion) and xmax = 65: within the 1 px tolerance, clipped to the image.
    root = make_voc({"a": [_box("cat", 1, 1, 64, 48), _box("cat", 0, 0, 65, 49)]})
    ds = load_voc(root, "trainval")
    assert ds.problems == ()
    np.testing.assert_array_equal(ds.records[0].boxes, [[0, 0, 64, 48], [0, 0, 64, 48]])


def test_box_outside_the_image_is_reported_and_dropped(make_voc) -> None:
    root = make_voc({"a": [_box("cat", 1, 1, 10, 10), _box("cat", 30, 10, 70, 20)]})
    ds = load_voc(root, "trainval")
    np.testing.assert_array_equal(ds.records[0].boxes, [[0, 0, 10, 10]])
    (problem,) = ds.problems
    assert problem.kind == "box outside image" and problem.path.endswith("a.xml")
    assert "object 2 (cat)" in problem.message and "64x48" in problem.message


@pytest.mark.parametrize("bbox", [(5, 5, 5, 9), (5, 9, 9, 9), (9, 5, 5, 9)])
def test_zero_and_negative_area(make_voc, bbox) -> None:
    ds = load_voc(make_voc({"a": [_box("cat", *bbox)]}), "trainval")
    assert ds.records[0].num_boxes == 0
    assert [p.kind for p in ds.problems] == ["zero or negative area"]


def test_non_numeric_and_non_finite_coordinates(make_voc) -> None:
    ds = load_voc(make_voc({"a": [_box("cat", "x", 1, 5, 5), _box("cat", "nan", 1, 5, 5)]}), "trainval")
    assert ds.records[0].num_boxes == 0
    assert [p.kind for p in ds.problems] == ["bad coordinates", "bad coordinates"]


def test_image_without_objects(make_voc) -> None:
    ds = load_voc(make_voc({"a": [], "b": [_box("cat", 1, 1, 5, 5)]}), "trainval")
    assert [r.num_boxes for r in ds.records] == [0, 1]
    assert ds.records[0].boxes.shape == (0, 4) and ds.problems == ()


def test_upper_case_extension_is_found(make_voc) -> None:
    # The annotation says a.jpg, the file is a.JPG (case-sensitive file systems).
    root = make_voc({"a": [_box("cat", 1, 1, 5, 5)]}, ext=".JPG", filenames={"a": "a.jpg"})
    (record,) = load_voc(root, "trainval").records
    assert record.path.name == "a.JPG"


def test_missing_split_file_is_a_clear_error(make_voc) -> None:
    root = make_voc({"a": []}, splits={"train": ["a"]})
    with pytest.raises(
        DataError, match=r"ImageSets/Main/test\.txt: no split file for split 'test'; splits found: train"
    ):
        load_voc(root, "test")


def test_split_none_loads_every_annotation(make_voc) -> None:
    root = make_voc({"a": [], "b": []}, splits={"train": ["a"]})
    assert [r.image_id for r in load_voc(root, None).records] == ["a", "b"]


def test_class_list_is_discovered_from_all_splits_sorted(make_voc) -> None:
    root = make_voc(
        {"a": [_box("zebra", 1, 1, 5, 5)], "b": [_box("ant", 1, 1, 5, 5)]}, splits={"test": ["a"]}
    )
    ds = load_voc(root, "test")
    assert ds.class_names == ("ant", "zebra")
    np.testing.assert_array_equal(ds.records[0].labels, [2])


def test_given_class_list_keeps_its_order_and_reports_unknown_classes(make_voc) -> None:
    root = make_voc({"a": [_box("cat", 1, 1, 5, 5), _box("dog", 1, 1, 5, 5), _box("emu", 1, 1, 5, 5)]})
    ds = load_voc(root, "trainval", class_names=["dog", "cat"])
    assert ds.class_names == ("dog", "cat")
    np.testing.assert_array_equal(ds.records[0].labels, [2, 1])
    (problem,) = ds.problems
    assert problem.kind == "unknown class" and "'emu'" in problem.message


def test_missing_image(make_voc) -> None:
    root = make_voc({"a": [], "b": []})
    (root / "JPEGImages" / "b.jpg").unlink()
    ds = load_voc(root, "trainval")
    assert [r.image_id for r in ds.records] == ["a"]
    assert [(p.kind, Path(p.path).name) for p in ds.problems] == [("missing image", "b.xml")]


def test_unreadable_image(make_voc) -> None:
    root = make_voc({"a": []})
    (root / "JPEGImages" / "a.jpg").write_bytes(b"")
    ds = load_voc(root, "trainval")
    assert ds.records == [] and ds.problems[0].kind == "unreadable image"


def test_filename_escaping_the_root(make_voc) -> None:
    root = make_voc({"a": []}, filenames={"a": "../../../etc/passwd"})
    ds = load_voc(root, "trainval")
    assert ds.records == [] and [p.kind for p in ds.problems] == ["path escapes dataset root"]


def test_split_id_escaping_the_root(make_voc) -> None:
    root = make_voc({"a": []}, splits={"trainval": ["a", "../../outside"]})
    ds = load_voc(root, "trainval")
    assert [p.kind for p in ds.problems] == ["path escapes dataset root"]


def test_duplicate_ids(make_voc) -> None:
    root = make_voc({"a": [], "b": []}, splits={"trainval": ["a", "b", "a"]})
    ds = load_voc(root, "trainval")
    assert [r.image_id for r in ds.records] == ["a", "b"]
    assert [p.kind for p in ds.problems] == ["duplicate id"]


def test_broken_xml(make_voc) -> None:
    root = make_voc({"a": [], "b": []})
    (root / "Annotations" / "a.xml").write_text("<annotation><object>")
    ds = load_voc(root, "trainval")
    assert [r.image_id for r in ds.records] == ["b"]
    assert ds.problems[0].kind == "bad annotation file" and ds.problems[0].path.endswith("a.xml")


def test_on_error_raise_stops_with_one_line(make_voc) -> None:
    root = make_voc({"a": [_box("cat", 5, 5, 5, 9)]})
    with pytest.raises(DataError) as info:
        load_voc(root, "trainval", on_error="raise")
    message = str(info.value)
    assert "\n" not in message and message.endswith(
        "a.xml: zero or negative area: object 1 (cat): xmin=5 ymin=5 xmax=5 ymax=9"
    )


def test_exif_rotated_image_whose_annotation_ignores_the_rotation(make_voc) -> None:
    root = make_voc({"a": [_box("cat", 1, 1, 5, 5)]})
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: the oriented image is 48x64, the annotation says 64x48
    Image.new("RGB", (64, 48)).save(root / "JPEGImages" / "a.jpg", exif=exif)
    ds = load_voc(root, "trainval")
    assert ds.records == []
    (problem,) = ds.problems
    assert problem.kind == "size mismatch" and "EXIF" in problem.message


def test_exif_rotated_image_annotated_in_its_oriented_size(make_voc) -> None:
    root = make_voc({"a": [_box("cat", 1, 1, 40, 60)]}, size=(48, 64))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (64, 48)).save(root / "JPEGImages" / "a.jpg", exif=exif)
    (record,) = load_voc(root, "trainval").records
    assert (record.width, record.height) == (48, 64)


def test_open_dataset_detects_voc(make_voc) -> None:
    root = make_voc({"a": [_box("cat", 1, 1, 5, 5)]})
    assert len(open_dataset(root, "trainval")) == 1
    assert len(open_dataset(str(root))) == 1


def test_not_a_voc_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a VOC dataset folder"):
        load_voc(tmp_path, "trainval")


def test_vocdevkit_folder_names_the_dataset_inside(make_voc) -> None:
    root = make_voc({"a": []})
    with pytest.raises(DataError, match="holds VOC dataset folder"):
        open_dataset(root.parent)
