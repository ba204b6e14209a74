from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rcnn_cli.artifacts import (
    Manifest,
    atomic_path,
    atomic_save_npz,
    atomic_write_json,
    check_parent_folder,
    digest_of,
    file_digest,
    read_manifest,
    write_manifest,
)
from rcnn_cli.errors import ArtifactError, RcnnError


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_check_parent_folder_refuses_a_missing_folder_in_one_line(tmp_path: Path) -> None:
    check_parent_folder(tmp_path / "out.png")
    with pytest.raises(RcnnError, match=r"out\.png: the folder .*no\\nwhere does not exist$"):
        check_parent_folder(tmp_path / "no\nwhere" / "out.png")
    (tmp_path / "file").write_text("")
    with pytest.raises(RcnnError, match="is not a folder"):
        check_parent_folder(tmp_path / "file" / "out.png")
    assert not (tmp_path / "no\nwhere").exists()


def test_npz_round_trip(tmp_path: Path) -> None:
    boxes = np.arange(8, dtype=np.float32).reshape(2, 4)
    atomic_save_npz(tmp_path / "img.npz", boxes=boxes)
    assert np.array_equal(np.load(tmp_path / "img.npz")["boxes"], boxes)


def test_manifest_round_trip_and_differences(tmp_path: Path) -> None:
    params = {"mode": "fast", "sizes": (1, 2)}
    m = Manifest(kind="proposals", format_version=1, params=params, inputs_hash="abc")
    write_manifest(tmp_path, m)
    back = read_manifest(tmp_path, "proposals")
    assert back.params == {"mode": "fast", "sizes": [1, 2]}
    back.check_compatible(tmp_path, {"mode": "fast", "sizes": (1, 2)}, "abc")
    with pytest.raises(ArtifactError, match=r"mode: 'fast' on disk, 'quality' now"):
        back.check_compatible(tmp_path, {"mode": "quality", "sizes": (1, 2)})
    with pytest.raises(ArtifactError, match="inputs differ"):
        back.check_compatible(tmp_path, {"mode": "fast", "sizes": [1, 2]}, "other")


def test_read_manifest_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such folder"):
        read_manifest(tmp_path / "missing", "proposals")
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        read_manifest(tmp_path, "proposals")
    write_manifest(tmp_path, Manifest(kind="features", format_version=3, params={}))
    with pytest.raises(ArtifactError, match="holds features, expected proposals"):
        read_manifest(tmp_path, "proposals")
    with pytest.raises(ArtifactError, match="newer than"):
        read_manifest(tmp_path, "features", max_version=1)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable manifest"):
        read_manifest(tmp_path, "features")


def test_digests(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"hello")
    assert file_digest(f) == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert digest_of(["a", "b"]) != digest_of(["ab"])
