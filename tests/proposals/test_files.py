"""Importing precomputed proposals: .mat in both layouts, .npz, .json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from rcnn_cli.data import ImageRecord
from rcnn_cli.errors import DataError
from rcnn_cli.proposals.files import FileProposals, mat_to_xyxy


def _record(image_id: str = "000004", width: int = 50, height: int = 40) -> ImageRecord:
    return ImageRecord(image_id, Path(f"{image_id}.jpg"), width, height)


def test_mat_layouts_convert_to_continuous_xyxy() -> None:
    # Pixel columns 0..9 and rows 5..19, inclusive.
    demo = mat_to_xyxy(np.array([[0, 5, 9, 19]], np.uint16), "x1y1x2y2-0based")
    voc = mat_to_xyxy(np.array([[6, 1, 20, 10]], np.uint16), "y1x1y2x2-1based")
    assert demo.tolist() == [[0, 5, 10, 20]]
    assert voc.tolist() == [[0, 5, 10, 20]]


def test_fast_rcnn_demo_style_mat_per_image(tmp_path: Path) -> None:
    # Like data/demo/000004_boxes.mat: uint16, 0-based inclusive x1 y1 x2 y2, reaching W-1 / H-1.
    boxes = np.array([[0, 0, 49, 39], [10, 5, 20, 15], [10, 5, 20, 15], [3, 3, 3, 3]], np.uint16)
    scipy.io.savemat(tmp_path / "000004_boxes.mat", {"boxes": boxes})
    p = FileProposals(str(tmp_path)).propose(None, _record())
    # The duplicate is dropped; order (the file's) is kept; boxes lie inside the 50x40 image.
    assert p.boxes.tolist() == [[0, 0, 50, 40], [10, 5, 21, 16], [3, 3, 4, 4]]
    assert (np.diff(p.scores) < 0).all()


def test_wrong_layout_is_detected(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x1 = rng.integers(0, 60, 50)
    y1 = rng.integers(0, 20, 50)
    boxes = np.stack([x1, y1, x1 + 30, y1 + 15], axis=1).astype(np.uint16)  # 0-based x1 y1 x2 y2 in 100x40
    scipy.io.savemat(tmp_path / "000004_boxes.mat", {"boxes": boxes})
    record = _record(width=100, height=40)
    assert len(FileProposals(str(tmp_path)).propose(None, record)) == 50
    with pytest.raises(DataError, match="wrong --mat-layout"):
        FileProposals(str(tmp_path), mat_layout="y1x1y2x2-1based").propose(None, record)


def test_voc_release_collection_mat(tmp_path: Path) -> None:
    images = np.empty((2, 1), dtype=object)
    images[0, 0], images[1, 0] = "000004", "000007"
    boxes = np.empty((1, 2), dtype=object)
    boxes[0, 0] = np.array([[6, 1, 20, 10]], np.float64)  # y1 x1 y2 x2, 1-based
    boxes[0, 1] = np.array([[1, 1, 40, 50], [2, 2, 3, 3]], np.float64)
    path = tmp_path / "voc_2007_test.mat"
    scipy.io.savemat(path, {"images": images, "boxes": boxes})
    method = FileProposals(str(path), mat_layout="y1x1y2x2-1based")
    assert method.propose(None, _record("000004")).boxes.tolist() == [[0, 5, 10, 20]]
    assert method.propose(None, _record("000007")).boxes.tolist() == [[0, 0, 50, 40], [1, 1, 3, 3]]
    with pytest.raises(DataError, match="no proposals for image '000009'"):
        method.propose(None, _record("000009"))


def test_npz_with_scores_is_sorted_by_score(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "a.npz",
        boxes=np.array([[0, 0, 10, 10], [5, 5, 20, 20]], np.float32),
        scores=np.array([0.1, 0.9], np.float32),
    )
    p = FileProposals(str(tmp_path)).propose(None, _record("a"))
    assert p.boxes.tolist() == [[5, 5, 20, 20], [0, 0, 10, 10]]
    np.testing.assert_allclose(p.scores, [0.9, 0.1])


def test_json_collection_and_per_image(tmp_path: Path) -> None:
    path = tmp_path / "all.json"
    path.write_text(json.dumps({"a": [[0, 0, 10, 10]], "b": {"boxes": [[1, 1, 5, 5]], "scores": [0.5]}}))
    method = FileProposals(str(path))
    assert method.propose(None, _record("a")).boxes.tolist() == [[0, 0, 10, 10]]
    assert method.propose(None, _record("b")).scores.tolist() == [0.5]
    folder = tmp_path / "per_image"
    folder.mkdir()
    (folder / "c.json").write_text(json.dumps([[2, 2, 8, 9]]))
    assert FileProposals(str(folder)).propose(None, _record("c")).boxes.tolist() == [[2, 2, 8, 9]]


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "x_boxes.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match=r"x_boxes\.mat"):
        FileProposals(str(tmp_path)).propose(None, _record("x"))
    np.savez(tmp_path / "y.npz", boxes=np.zeros((3, 5), np.float32))
    with pytest.raises(DataError, match=r"expected \[N, 4\]"):
        FileProposals(str(tmp_path)).propose(None, _record("y"))
    with pytest.raises(DataError, match="no proposals file for image 'z'"):
        FileProposals(str(tmp_path)).propose(None, _record("z"))
    with pytest.raises(DataError, match="no such proposals"):
        FileProposals(str(tmp_path / "missing"))
