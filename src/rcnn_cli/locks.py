"""Advisory locks on output folders: one writer replaces a folder, many may fill it together.

A stage that writes into a folder holds ``<folder>/.rcnn.lock`` for as long as it runs:

* *shared* while it adds results under a manifest it agrees with: the shards of one ``rcnn propose``
  (``--shard i/n``, torchrun ranks, ``--workers``) fill one folder at the same time;
* *exclusive* while it replaces what the folder holds (``--overwrite`` deleting another run's files,
  or a stage such as ``rcnn detect`` whose outputs are one set). It never waits for that: when another
  process holds the folder, the run is refused with one line, so two runs never mix their results.

The locks are ``flock``\\ s: the kernel drops them when the process ends, however it ends, so a killed
run never leaves a folder locked. Where ``fcntl`` does not exist (Windows) locking is skipped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from rcnn_cli.errors import ArtifactError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".rcnn.lock"


class FolderLock:
    """The lock of one output folder, held by this process until :meth:`release` (or the ``with`` ends)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ArtifactError(f"{self.folder}: exists and is not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)

    def shared(self) -> FolderLock:
        """Join the writers that add to the folder; refused while one replaces it."""
        self._take(exclusive=False)
        return self

    def exclusive(self) -> FolderLock:
        """Become the folder's only writer (also from shared); refused while any other writer runs."""
        self._take(exclusive=True)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def _take(self, exclusive: bool) -> None:
        if fcntl is None or self._fd is None:
            return
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        try:
            fcntl.flock(self._fd, mode)
        except BlockingIOError:
            what = "written" if exclusive else "replaced"
            raise ArtifactError(
                f"{self.folder}: is being {what} by another rcnn process; wait for it to finish, "
                "or choose another -o folder"
            ) from None
        except OSError:  # a file system without flock (some network mounts): run unlocked, as before
            return


@contextlib.contextmanager
def writing(folder: str | os.PathLike[str], exclusive: bool) -> Iterator[FolderLock]:
    """``with writing(folder, exclusive):`` hold the folder's lock for the block."""
    lock = FolderLock(folder)
    try:
        yield lock.exclusive() if exclusive else lock.shared()
    finally:
        lock.release()
