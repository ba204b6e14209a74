"""Test helpers for tests that run ``rcnn`` as a real process and kill it with SIGKILL at a chosen
point: the command line and environment, waiting for a condition, a process's children (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import rcnn_cli
from rcnn_cli.temporaries import host_name, is_temporary, process_running

SRC = Path(rcnn_cli.__file__).resolve().parents[1]


def start_rcnn(*args: str | os.PathLike[str], log: Path) -> subprocess.Popen:
    """``python -m rcnn_cli.cli.main ARGS`` with this tree's package first on the path and torch on one
    thread (results then match a run in the test process with the ``one_thread`` fixture, bit for bit);
    stdout and stderr go to ``log``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "rcnn_cli.cli.main", *map(str, args)]
    with log.open("w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], log: Path, timeout: float = 120) -> None:
    """SIGKILL ``process`` as soon as ``ready()``; fails when it ends first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise AssertionError(
                f"ended (exit {process.returncode}) before it was killed:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"not ready after {timeout} s:\n{log.read_text()}")
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc/*/stat)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def command_line(pid: int) -> str:
    """The command line of process ``pid``, "" when it has ended."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def still_running(pids: list[int]) -> list[int]:
    return [pid for pid in pids if process_running(pid)]


def kill_all(pids: list[int]) -> None:
    """Clean-up after a failed test: end what it left running."""
    for pid in still_running(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def left_over(path: Path, pid: int) -> Path:
    """The temporary that process ``pid`` of this machine would leave when killed while writing
    ``path`` atomically."""
    temporary = path.parent / f".{path.name}.{host_name()}@{pid}.k1ll3d00.tmp{path.suffix}"
    temporary.write_bytes(b"half written")
    return temporary


def temporaries_in(folder: Path) -> list[Path]:
    """Temporary files of atomic writes anywhere under ``folder``."""
    return [path for path in folder.rglob("*") if path.is_file() and is_temporary(path)]
