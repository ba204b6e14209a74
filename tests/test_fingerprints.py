"""Content fingerprints: the bytes decide, the cache only saves reading them again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from rcnn_cli import fingerprints as fp
from rcnn_cli.errors import DataError


def test_a_fingerprint_is_the_size_and_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"pixels")
    with fp.Fingerprints(tmp_path / "cache") as prints:
        assert prints.of(path) == f"6:{hashlib.sha256(b'pixels').hexdigest()}"


def test_the_cache_saves_reading_and_notices_a_change(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"one")
    reads: list[Path] = []
    real = fp._digest_bytes
    monkeypatch.setattr(fp, "_digest_bytes", lambda p: reads.append(p) or real(p))
    with fp.Fingerprints(tmp_path / "cache") as prints:
        first = prints.of(path)
    with fp.Fingerprints(tmp_path / "cache") as prints:  # a later run: from the cache
        assert prints.of(path) == first
    assert len(reads) == 1
    path.write_bytes(b"two")  # same size, other bytes, newer mtime
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with fp.Fingerprints(tmp_path / "cache") as prints:
        assert prints.of(path) != first
    assert len(reads) == 2


def test_without_a_writable_cache_the_results_are_the_same(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"one")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    with fp.Fingerprints(blocker) as uncached, fp.Fingerprints(tmp_path / "cache") as cached:
        assert uncached.of(path) == cached.of(path)


def test_a_missing_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    with fp.Fingerprints(tmp_path / "cache") as prints, pytest.raises(DataError, match=r"gone\.jpg"):
        prints.of(tmp_path / "gone.jpg")
