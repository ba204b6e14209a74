"""Unlabelled images: folders, single files, list files, and open_dataset's auto-detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcnn_cli.data import load_images, open_dataset
from rcnn_cli.errors import DataError


def test_folder_is_searched_recursively_in_sorted_order(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "imgs" / "b.JPG", 30, 20, format="JPEG")
    image_writer(tmp_path / "imgs" / "a.png", 10, 12)
    image_writer(tmp_path / "imgs" / "sub" / "c.jpeg", 8, 8, format="JPEG")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    ds = load_images(tmp_path / "imgs")
    assert [r.image_id for r in ds.records] == ["a", "b", "sub/c"]
    assert [(r.width, r.height) for r in ds.records] == [(10, 12), (30, 20), (8, 8)]
    assert all(r.num_boxes == 0 for r in ds.records) and ds.class_names == ()
    assert ds.root == tmp_path / "imgs"


def test_files_and_list_files(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "x.png", 10, 10)
    image_writer(tmp_path / "d" / "y.png", 10, 10)
    (tmp_path / "list.txt").write_text("# my images\nd/y.png\n\n")
    ds = load_images([tmp_path / "x.png", tmp_path / "list.txt"])
    assert [r.image_id for r in ds.records] == ["x", "y"]


def test_bad_files_are_skipped_and_reported(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "good.png", 10, 10)
    (tmp_path / "empty.png").write_bytes(b"")
    ds = load_images([tmp_path / "good.png", tmp_path / "empty.png", tmp_path / "missing.png"])
    assert [r.image_id for r in ds.records] == ["good"]
    assert sorted(p.kind for p in ds.problems) == ["missing image", "unreadable image"]
    with pytest.raises(DataError, match=r"empty\.png: unreadable image: empty file"):
        load_images([tmp_path / "good.png", tmp_path / "empty.png"], on_error="raise")


def test_duplicate_ids_across_folders(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "a" / "x.png", 10, 10)
    image_writer(tmp_path / "b" / "x.png", 10, 10)
    ds = load_images([tmp_path / "a", tmp_path / "b"])
    assert len(ds.records) == 1 and [p.kind for p in ds.problems] == ["duplicate id"]


def test_open_dataset_detects_images(tmp_path: Path, image_writer) -> None:
    image_writer(tmp_path / "x.png", 10, 10)
    assert len(open_dataset(tmp_path)) == 1
    assert len(open_dataset(tmp_path / "x.png")) == 1
    with pytest.raises(DataError, match="--split test needs a VOC dataset folder"):
        open_dataset(tmp_path, "test")
    with pytest.raises(DataError, match="no such dataset"):
        open_dataset(tmp_path / "nothing")
