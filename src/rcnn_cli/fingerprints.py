"""Content fingerprints of input files: what a stage's output was made *from*, not only its name.

An image id says which image a result belongs to, but two datasets (or a dataset and its mirrored copy)
can share ids. So every per-image result (a proposals ``.npz``, a detections ``per_image/*.json``)
records the fingerprint of the image file it was computed from, and every stage that consumes it
compares that with the fingerprint of the image it has now: a result made from other bytes is refused
with the file named, never silently reused.

A fingerprint is ``"<size>:<sha256 of the bytes>"``. Hashing reads the whole file, so digests are
cached, keyed by the file's resolved path, size, modification time and inode: a rerun over 10,000
unchanged images reads none of them again. The cache is an SQLite file in ``$RCNN_CACHE_DIR`` (default
``$XDG_CACHE_HOME/rcnn-cli``, else ``~/.cache/rcnn-cli``); when it cannot be written, digests are
computed each time instead, with the same results.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from pathlib import Path

from rcnn_cli.errors import DataError

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where the digest cache lives (see the module docstring)."""
    if os.environ.get("RCNN_CACHE_DIR"):
        return Path(os.environ["RCNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rcnn-cli"


def _digest_bytes(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


class Fingerprints:
    """Fingerprints of files, read through the cache; one instance per stage run (one connection).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._db: sqlite3.Connection | None = None
        folder = Path(directory) if directory is not None else cache_dir()
        # Any failure to open or create the cache (read-only home, full disk) only costs speed.
        with contextlib.suppress(OSError, sqlite3.Error):
            folder.mkdir(parents=True, exist_ok=True)
            # Autocommit: no transaction stays open, so other readers and writers of the cache (other
            # processes: --workers, shards; other stages in this one) never wait on this one.
            db = sqlite3.connect(folder / "fingerprints.sqlite3", timeout=30, isolation_level=None)
            # WAL lets them read while one writes; NORMAL syncs at checkpoints, not at every insert.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, inode INTEGER, digest TEXT)"
            )
            self._db = db

    def __enter__(self) -> Fingerprints:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a source may hold one for its lifetime
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def of(self, path: str | os.PathLike[str]) -> str:
        """``"<size>:<sha256>"`` of the file at ``path`` (DataError naming it when it cannot be read)."""
        resolved = Path(path).resolve()
        try:
            stat = resolved.stat()
        except OSError as exc:
            raise DataError(path, f"cannot read the file ({exc.strerror or exc})") from None
        key = (str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        digest = self._cached(key)
        if digest is None:
            try:
                digest = _digest_bytes(resolved)
            except OSError as exc:
                raise DataError(path, f"cannot read the file ({exc.strerror or exc})") from None
            self._store(key, digest)
        return f"{stat.st_size}:{digest}"

    def of_existing(self, path: str | os.PathLike[str]) -> str:
        """:meth:`of`, or "" when there is no file at ``path`` (``--method file`` reads boxes of images
        that need not be here; a result made without a fingerprint is checked by its size only)."""
        return self.of(path) if Path(path).is_file() else ""

    def _cached(self, key: tuple[str, int, int, int]) -> str | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT digest FROM digests WHERE path = ? AND size = ? AND mtime_ns = ? AND inode = ?", key
            ).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def _store(self, key: tuple[str, int, int, int], digest: str) -> None:
        if self._db is None:
            return
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)", (*key, digest))


def describe_mismatch(result: str | os.PathLike[str], image: str | os.PathLike[str], stored: str) -> str:
    """The one line for a result made from other bytes than the image it is asked for now."""
    return (
        f"{result}: made from another image ({stored[:24]}…) than {image} as it is now; "
        "results are never reused across images that merely share an id"
    )
