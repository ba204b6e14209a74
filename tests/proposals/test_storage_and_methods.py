"""Proposals folder (manifest, resume, shards), dense windows, the external wrappers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rcnn_cli.data import ImageRecord
from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.proposals import DenseWindows, Proposals, ProposalStore, SelectivesearchPackage
from rcnn_cli.proposals.base import ProposalMethod, finalize_boxes
from rcnn_cli.proposals.external import OPENCV_CONTRIB_HINT, OpenCVSelectiveSearch
from rcnn_cli.proposals.storage import file_name, parse_shard, shard_items


def test_store_round_trip_and_manifest_check(tmp_path: Path) -> None:
    store = ProposalStore(tmp_path / "props")
    store.prepare({"method": "dense", "seed": 0}, ["a", "b"])
    p = Proposals(np.array([[0, 0, 4, 5]], np.float32), np.array([0.5], np.float32))
    store.write("a", p, width=10, height=8)
    back = store.read("a")
    np.testing.assert_array_equal(back.boxes, p.boxes)
    with np.load(store.path("a")) as data:
        assert data["image_size"].tolist() == [8, 10] and str(data["image_id"]) == "a"
    # Same settings: accepted, files kept.
    store.prepare({"method": "dense", "seed": 0}, ["b", "a"])
    assert store.exists("a")
    with pytest.raises(ArtifactError, match=r"seed: 0 on disk, 1 now.*new -o folder, or --overwrite"):
        store.prepare({"method": "dense", "seed": 1}, ["a", "b"])
    with pytest.raises(ArtifactError, match="inputs differ"):
        store.prepare({"method": "dense", "seed": 0}, ["a", "b", "c"])
    store.prepare({"method": "dense", "seed": 1}, ["a", "b"], overwrite=True)
    assert not store.exists("a")


def test_file_names_are_safe_and_unique() -> None:
    assert file_name("BloodImage_00001") == "BloodImage_00001.npz"
    a, b = file_name("x/y"), file_name("x_y")
    assert "/" not in a and a != b
    assert not file_name("../etc").startswith(".")


def test_shards_cover_all_items_once() -> None:
    items = list(range(10))
    parts = [shard_items(items, i, 3) for i in range(3)]
    assert sorted(i for part in parts for i in part) == items
    assert parse_shard("1/4") == (1, 4)
    assert parse_shard(None, {"RANK": "2", "WORLD_SIZE": "3"}) == (2, 3)
    assert parse_shard(None, {}) == (0, 1)
    for bad in ("4/4", "a/b", "1"):
        with pytest.raises(RcnnError, match="--shard"):
            parse_shard(bad)


def test_finalize_clips_filters_and_dedups() -> None:
    boxes = np.array([[-5, 0, 10, 10], [0, 0, 10, 10], [2, 2, 3, 30], [50, 50, 60, 60], [1, 1, 9, 9]])
    p = finalize_boxes(boxes, np.arange(5, 0, -1), width=20, height=20, min_size=2, max_proposals=0)
    # Clipped copy of box 0 equals box 1 (dropped), box 2 is 1 px wide, box 3 is outside.
    assert p.boxes.tolist() == [[0, 0, 10, 10], [1, 1, 9, 9]]
    assert p.scores.tolist() == [5, 1]


def test_dense_windows_in_bounds() -> None:
    record = ImageRecord("a", Path("a.jpg"), 200, 100)
    method = DenseWindows(max_proposals=50)
    assert isinstance(method, ProposalMethod)
    p = method.propose(None, record)
    assert len(p) == 50
    assert (p.boxes[:, 2] <= 200).all() and (p.boxes[:, 3] <= 100).all() and (p.boxes >= 0).all()
    sizes = np.sqrt((p.boxes[:, 2] - p.boxes[:, 0]) * (p.boxes[:, 3] - p.boxes[:, 1]))
    assert sizes.min() < 40 and sizes.max() > 60  # several scales survive the cap


@pytest.mark.filterwarnings("ignore:Applying `local_binary_pattern`:UserWarning")
def test_selectivesearch_package_boxes_match_its_rects() -> None:
    import selectivesearch

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(40, 50, 3), dtype=np.uint8)
    image[10:30, 5:25] = (250, 0, 0)
    _, regions = selectivesearch.selective_search(image, scale=500, sigma=0.9, min_size=10)
    expected = {(x, y, x + w + 1, y + h + 1) for x, y, w, h in (r["rect"] for r in regions)}
    p = SelectivesearchPackage(max_proposals=0).propose(image)
    got = {tuple(int(v) for v in b) for b in p.boxes}
    assert got == {(x1, y1, min(x2, 50), min(y2, 40)) for x1, y1, x2, y2 in expected}
    assert len(got) == len(p)


def test_opencv_without_contrib_says_what_to_install() -> None:
    import cv2

    if hasattr(cv2, "ximgproc"):
        pytest.skip("OpenCV contrib is installed here")
    with pytest.raises(RcnnError, match="pip install opencv-contrib-python-headless"):
        OpenCVSelectiveSearch()
    assert "selective-search" in OPENCV_CONTRIB_HINT
