"""Temporaries of atomic writes name their writer; a later run removes those of dead writers and old
ones, never a live writer's (issue: reliability, leftovers after a kill)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from rcnn_cli.artifacts import atomic_path
from rcnn_cli.cli.main import cli
from rcnn_cli.temporaries import (
    STALE_AFTER_S,
    host_name,
    is_temporary,
    process_running,
    remove_stale_temporaries,
)
from support.processes import wait_until


def _dead_pid() -> int:
    """The pid of a process that has ended (and been collected)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temporary(folder: Path, name: str, writer: str, age_s: float = 0.0) -> Path:
    """A temporary of ``name`` as ``writer`` (``host@pid``, or "" for an old-style name) left it."""
    path = folder / (f".{name}.{writer}.abcd1234.tmp.npz" if writer else f".{name}.abcd1234.tmp.npz")
    path.write_bytes(b"half written")
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def test_a_temporary_names_its_writer(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.npz") as tmp:
        assert is_temporary(tmp) and tmp.suffix == ".npz"
        assert tmp.name.startswith(f".x.npz.{host_name()}@{os.getpid()}.")
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]


def test_stale_temporaries_go_live_ones_stay(tmp_path: Path) -> None:
    here, dead = host_name(), _dead_pid()
    stale = [
        _temporary(tmp_path, "a.npz", f"{here}@{dead}"),  # killed writer of this machine
        _temporary(tmp_path, "b.npz", f"{here}@{os.getpid()}", STALE_AFTER_S + 60),  # a pid taken again
        _temporary(tmp_path, "c.npz", f"elsewhere@{dead}", STALE_AFTER_S + 60),  # another machine's, old
        _temporary(tmp_path, "d.npz", "", STALE_AFTER_S + 60),  # an older version's name, old
    ]
    live = [
        _temporary(tmp_path, "e.npz", f"{here}@{os.getpid()}"),  # a shard writing right now
        _temporary(tmp_path, "f.npz", f"elsewhere@{dead}"),  # another machine's, fresh: maybe writing
        _temporary(tmp_path, "g.npz", ""),
    ]
    kept = [tmp_path / "h.npz", tmp_path / ".hidden", tmp_path / ".tmp-notes"]  # not temporaries
    for path in kept:
        path.write_bytes(b"")
        os.utime(path, (0, 0))  # old, but not a temporary
    assert remove_stale_temporaries(tmp_path, tmp_path / "missing") == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(live + kept)


def test_a_zombie_is_not_running() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    zombie = lambda: Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"  # noqa: E731
    assert wait_until(zombie, timeout=10.0)
    assert not process_running(child.pid)  # ended, though its parent has not collected it yet
    child.wait()
    assert process_running(os.getpid())


def test_a_rerun_of_propose_removes_a_killed_runs_temporaries(tmp_path: Path) -> None:
    images, props = tmp_path / "images", tmp_path / "props"
    images.mkdir()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(images / "a.png")
    args = ["-q", "propose", str(images), "-o", str(props), "--method", "dense"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    left = _temporary(props, "b.npz", f"{host_name()}@{_dead_pid()}")
    shard = _temporary(props, "c.npz", f"{host_name()}@{os.getpid()}")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert not left.exists() and shard.exists()
