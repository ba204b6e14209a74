"""The synthetic shapes dataset: deterministic, valid VOC, and every box is the tight box of its shape."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from rcnn_cli.data import load_voc, make_synthetic_voc, read_image
from rcnn_cli.data.validate import check_dataset


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_voc(tmp_path_factory.mktemp("syn") / "shapes", 12, seed=3)


def test_same_seed_gives_identical_files(synthetic: Path, tmp_path: Path) -> None:
    again = make_synthetic_voc(tmp_path / "again", 12, seed=3)
    assert _digests(again) == _digests(synthetic)
    other = make_synthetic_voc(tmp_path / "other", 12, seed=4)
    assert _digests(other) != _digests(synthetic)


def test_voc_layout_and_splits(synthetic: Path) -> None:
    splits = {name: load_voc(synthetic, name).records for name in ("train", "val", "test", "trainval")}
    ids = {name: {r.image_id for r in records} for name, records in splits.items()}
    assert ids["trainval"] == ids["train"] | ids["val"]
    assert not ids["train"] & ids["val"] and not ids["trainval"] & ids["test"]
    assert len(ids["trainval"] | ids["test"]) == 12 and all(ids.values())
    report = check_dataset(synthetic)
    assert report.ok, report.problems
    assert report.dataset.class_names == ("circle", "square", "triangle")
    assert all(r.num_boxes >= 1 for r in report.dataset.records)
    assert {(r.width, r.height) for r in report.dataset.records} == {(160, 120)}


def test_boxes_are_the_tight_boxes_of_the_drawn_shapes(synthetic: Path) -> None:
    """Find the shapes independently (saturated pixels, connected components) and compare boxes."""
    for record in load_voc(synthetic, None).records:
        rgb = read_image(record.path).astype(np.int16)
        saturated = (rgb.max(axis=2) - rgb.min(axis=2)) >= 150
        components, count = ndimage.label(saturated)
        found = []
        for rows, cols in ndimage.find_objects(components):
            found.append([cols.start, rows.start, cols.stop, rows.stop])  # continuous xyxy
        assert count == record.num_boxes, record.image_id
        assert sorted(found) == sorted(record.boxes.astype(int).tolist()), record.image_id


def test_shapes_look_like_their_class(synthetic: Path) -> None:
    """Fill ratio of the box: square ~1, circle ~pi/4, triangle ~1/2."""
    expected = {1: np.pi / 4, 2: 1.0, 3: 0.5}
    for record in load_voc(synthetic, None).records:
        rgb = read_image(record.path).astype(np.int16)
        saturated = (rgb.max(axis=2) - rgb.min(axis=2)) >= 150
        for (x1, y1, x2, y2), label in zip(record.boxes.astype(int), record.labels, strict=True):
            fill = saturated[y1:y2, x1:x2].mean()
            assert abs(fill - expected[int(label)]) < 0.12, (record.image_id, int(label), fill)


def test_images_are_png_with_textured_background(synthetic: Path) -> None:
    path = next((synthetic / "JPEGImages").iterdir())
    assert Image.open(path).format == "PNG"
    rgb = read_image(path).astype(np.int16)
    background = (rgb.max(axis=2) - rgb.min(axis=2)) < 150
    assert rgb[background].std() > 5  # not a flat colour
