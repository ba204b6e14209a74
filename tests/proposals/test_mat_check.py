"""The .mat structure check: every file scipy writes passes, and a corrupt element type that made
scipy's reader segfault (found by the fuzz test) is a one-line error from ``rcnn propose``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse

from rcnn_cli.proposals.mat_check import MatStructureError, check_mat5
from support.inference import write_images

REPO = Path(__file__).resolve().parents[2]


def _mat(variables: dict, compress: bool = False, fmt: str = "5") -> bytes:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=compress, format=fmt)
    return buffer.getvalue()


def _collection() -> dict:
    images = np.empty((2, 1), dtype=object)
    images[0, 0], images[1, 0] = "x", "y"
    boxes = np.empty((1, 2), dtype=object)
    boxes[0, 0], boxes[0, 1] = np.ones((3, 4)), np.zeros((0, 4))
    return {"images": images, "boxes": boxes}


def _variants() -> list[dict]:
    records = np.zeros((2,), dtype=[("x", object), ("y", object)])
    records[0], records[1] = (1, "a"), (np.ones(3), "bb")
    nested = np.empty((1, 2), dtype=object)
    nested[0, 0], nested[0, 1] = _collection()["boxes"], "text"
    return [
        {"boxes": np.arange(12, dtype=np.uint16).reshape(3, 4)},
        _collection(),
        {"s": "hello", "c": np.array([1 + 2j, 3]), "e": np.zeros((0, 4)), "b": np.array([True, False])},
        {"st": {"boxes": np.ones((2, 4)), "name": "x"}, "sp": scipy.sparse.random(5, 4, density=0.3)},
        {"records": records, "nested": nested, "i64": np.arange(5, dtype=np.int64), "f": np.float32(2)},
    ]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
def test_files_scipy_writes_pass(compress: bool) -> None:
    for variables in _variants():
        check_mat5(_mat(variables, compress))
    check_mat5(_mat({"boxes": np.ones((2, 4))}, fmt="4"))  # v4 is left to scipy


def _crashing_file() -> bytes:
    """The collection with the small element holding the id "x" given type 0x4010 (one flipped bit):
    scipy 1.17 reads its type table out of bounds on it and the process dies."""
    data = _mat(_collection())
    element = b"\x10\x00\x01\x00x"  # small element: type 16 (utf8), 1 byte, "x"
    assert data.count(element) == 1
    return data.replace(element, b"\x10\x40\x01\x00x")


def _char_without_dims() -> bytes:
    """A char array whose dims element holds no value: scipy 1.17 segfaults on it too."""
    data = _mat({"s": "x"})
    dims = bytes.fromhex("050000000800000001000000010000000100010073")
    assert data.count(dims) == 1  # dims [1, 1] (int32, 8 bytes), then the name "s" (small element)
    # Dims of 0 bytes: the two values become an int8 element that takes the name's place.
    return data.replace(dims, bytes.fromhex("050000000000000001000000010000000100010073"))


def test_damaged_files_are_refused_with_the_place() -> None:
    with pytest.raises(MatStructureError, match=r"data element of type 16400 at byte \d+"):
        check_mat5(_crashing_file())
    with pytest.raises(MatStructureError, match="array of 0 dimensions at byte 128"):
        check_mat5(_char_without_dims())
    good = _mat(_collection())
    with pytest.raises(MatStructureError, match="overruns its container"):
        check_mat5(good[:-9])
    with pytest.raises(MatStructureError, match="expected an array"):
        check_mat5(good[:128] + b"\x01\x00\x00\x00\x08\x00\x00\x00" + b"\0" * 8)


def test_propose_reports_the_file_scipy_would_crash_on(tmp_path: Path) -> None:
    write_images(tmp_path / "images", 1)
    (tmp_path / "set.mat").write_bytes(_crashing_file())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    source, out = str(tmp_path / "set.mat"), str(tmp_path / "p")
    command = [sys.executable, "-m", "rcnn_cli.cli.main", "propose", str(tmp_path / "images"),
               "--method", "file", "--from", source, "-o", out]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr  # the one image bad: an error exit; a segfault is -11
    assert f"{tmp_path / 'set.mat'}: malformed .mat file (data element of type 16400" in result.stderr
    assert "Traceback" not in result.stderr
