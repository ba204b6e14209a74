"""The temporary files of atomic writes, and the removal of those a killed run left behind.

:func:`rcnn_cli.artifacts.atomic_path` writes ``NAME`` as ``.NAME.<host>@<pid>.<random>.tmp<suffix>``
in the same folder and renames it into place; a run killed between the two leaves it there. The name
says who wrote it, so that a later run of the stage in that folder can tell a leftover from a write
still under way (another shard, another worker, another rank filling the same folder). A temporary is
*stale*, and :func:`remove_stale_temporaries` removes it, when

- it was written on this machine (``host``) by a process (``pid``) that is no longer running, or
- it has not been modified for :data:`STALE_AFTER_S` seconds, whoever wrote it: one atomic write takes
  seconds, never an hour. This also covers writers on other machines sharing the folder (their pids
  mean nothing here), names of older versions without a writer, and a dead writer's pid taken since
  by another process.

A live writer's temporary is never removed, so concurrent shards do not delete each other's.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterable
from pathlib import Path

#: A temporary not modified for this long is stale whoever wrote it (module docstring).
STALE_AFTER_S = 3600.0
#: ``mkstemp``'s names: the prefix, 8 random characters, ``.tmp`` and the target's suffix.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?")
_WRITER = re.compile(r"\.(?P<host>[A-Za-z0-9-]*)@(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp")


def host_name() -> str:
    """This machine's name as temporaries carry it: letters, digits and ``-``, at most 32 characters."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32]


def temporary_prefix(name: str) -> str:
    """The start of the temporary name for a file ``name`` written by this process (atomic writes add
    the random part and ``.tmp<suffix>``)."""
    return f".{name}.{host_name()}@{os.getpid()}."


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is named as atomic writes name their temporaries (also those of older versions,
    ``.NAME.<random>.tmp<suffix>``)."""
    return _TEMPORARY.fullmatch(path.name) is not None


def is_stale(path: Path, now: float | None = None) -> bool:
    """Whether the temporary ``path`` is a leftover (module docstring); False when it is already gone."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age >= STALE_AFTER_S:
        return True
    writer = _WRITER.search(path.name)
    return writer is not None and writer["host"] == host_name() and not process_running(int(writer["pid"]))


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie, dead but not yet collected, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    try:  # Linux: the state after the command name in /proc/PID/stat; Z and X are dead
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def remove_stale_temporaries(*folders: str | os.PathLike[str]) -> list[Path]:
    """Remove the stale temporaries (module docstring) directly in each of ``folders``; returns them.

    Call it when a stage starts writing into a folder. Folders that do not exist are skipped.
    """
    removed = []
    now = time.time()
    for path in _temporaries(folders):
        if is_stale(path, now):
            path.unlink(missing_ok=True)  # another run may have removed it first
            removed.append(path)
    return removed


def _temporaries(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    found = []
    for folder in map(Path, folders):
        if folder.is_dir():
            found += [path for path in folder.glob(".*.tmp*") if path.is_file() and is_temporary(path)]
    return sorted(found)
