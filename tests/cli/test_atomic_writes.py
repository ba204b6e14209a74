"""Files the stages write atomically: permissions from the umask, no temporary left after a failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.artifacts import atomic_save_npz, atomic_torch_save, atomic_write_bytes, atomic_write_json
from rcnn_cli.cli.main import cli
from support.inference import small_checkpoint, write_images

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def umask(request):
    """Run the test under ``request.param`` as the process umask, restored afterwards."""
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def _run(*args: str) -> None:
    result = CliRunner().invoke(cli, ["-q", "--device", "cpu", *args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("umask", [0o022, 0o027], indirect=True, ids=["022", "027"])
def test_outputs_get_0666_minus_the_umask(umask: int, tmp_path: Path) -> None:
    images = tmp_path / "images"
    write_images(images, 2)
    model = small_checkpoint(tmp_path / "model.pt")  # save_checkpoint: torch.save, atomically
    _run("propose", str(images), "--method", "dense", "--max-proposals", "20", "-o", str(tmp_path / "p"))
    _run("detect", str(images), "--model", str(model), "--proposals", str(tmp_path / "p"),
         "-o", str(tmp_path / "d"))  # fmt: skip
    written = [model, *(tmp_path / "p").iterdir(), *(tmp_path / "d").rglob("*.*")]
    suffixes = {p.suffix for p in written}
    assert suffixes == {".pt", ".npz", ".json", ".jpg", ".lock"}  # .rcnn.lock: the folders' locks
    expected = 0o666 & ~umask
    modes = {p.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert set(modes.values()) == {oct(expected)}, modes


def _only(folder: Path, *names: str) -> None:
    """``folder`` holds exactly ``names``, besides the lock a writing stage keeps there (.rcnn.lock)."""
    assert sorted(p.name for p in folder.iterdir() if p.name != ".rcnn.lock") == sorted(names)


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


class _BadArray:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array")


def test_failed_writes_leave_no_temporary_and_the_old_file(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "a.json", {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {"not json": {1, 2}})
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "b.bin", "text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_torch_save({"weights": torch.zeros(3), "bad": _Unpicklable()}, tmp_path / "m.pt")
    with pytest.raises(RuntimeError, match="no array"):
        atomic_save_npz(tmp_path / "c.npz", good=np.zeros(3), bad=_BadArray())
    _only(tmp_path, "a.json")
    assert (tmp_path / "a.json").read_text().strip().replace(" ", "").replace("\n", "") == '{"ok":1}'


def test_interrupted_propose_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    images = tmp_path / "images"
    write_images(images, 3)
    real_savez = np.savez
    calls = []

    def interrupted_savez(file, **arrays):
        calls.append(1)
        if len(calls) == 2:  # the second image: half a file, then Ctrl-C
            file.write(b"PK\x03\x04 half")
            raise KeyboardInterrupt
        return real_savez(file, **arrays)

    monkeypatch.setattr(np, "savez", interrupted_savez)
    out = tmp_path / "props"
    result = CliRunner().invoke(cli, ["propose", str(images), "--method", "dense", "-o", str(out)])
    assert result.exit_code == 1 and "interrupted" in result.output
    _only(out, "manifest.json", "img0.npz")  # the finished image is kept, nothing else
    monkeypatch.setattr(np, "savez", real_savez)
    result = CliRunner().invoke(cli, ["propose", str(images), "--method", "dense", "-o", str(out)])
    assert result.exit_code == 0 and "1 already done" in result.output, result.output
