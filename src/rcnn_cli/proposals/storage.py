"""The proposals folder: one ``.npz`` per image plus ``manifest.json`` (docs/FORMATS.md).

Each image's file is written atomically, so a file that exists is complete: a rerun
skips it (resume), and several processes (``--workers``, ``--shard i/n``, torchrun
ranks) can fill one folder at the same time without coordination. The manifest pins
the method, its parameters and the input set; a rerun with anything else is refused
rather than mixing two kinds of proposals in one folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rcnn_cli.artifacts import (
    MANIFEST_NAME,
    Manifest,
    atomic_save_npz,
    check_distinct_stems,
    digest_of,
    read_manifest,
    safe_stem,
    write_manifest,
)
from rcnn_cli.errors import ArtifactError, DataError, RcnnError
from rcnn_cli.proposals.base import Proposals

KIND = "proposals"
FORMAT_VERSION = 1


def file_name(image_id: str) -> str:
    """``<image_id>.npz``, the id made safe by :func:`rcnn_cli.artifacts.safe_stem`."""
    return f"{safe_stem(image_id)}.npz"


def inputs_hash(image_ids: Sequence[str]) -> str:
    """Digest of the whole image set (not one shard's part: all shards share it)."""
    return digest_of(sorted(image_ids))


def parse_shard(spec: str | None, env: dict[str, str] | None = None) -> tuple[int, int]:
    """``"i/n"`` (0-based) -> (i, n); without a spec, torchrun's RANK / WORLD_SIZE; else (0, 1)."""
    env = dict(os.environ) if env is None else env
    if spec:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
        if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
            raise RcnnError(f"--shard {spec}: expected i/n with 0 <= i < n, e.g. 0/4")
        return int(match.group(1)), int(match.group(2))
    if "RANK" in env and "WORLD_SIZE" in env:
        try:
            rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        except ValueError:
            raise RcnnError("RANK and WORLD_SIZE must be integers") from None
        if not 0 <= rank < world:
            raise RcnnError(f"RANK={rank} is outside WORLD_SIZE={world}")
        return rank, world
    return 0, 1


def shard_items(items: Sequence, index: int, count: int) -> list:
    """Every ``count``-th item starting at ``index``: shards are disjoint and cover all items."""
    return list(items[index::count])


class ProposalStore:
    """Writes and reads one proposals folder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, image_id: str) -> Path:
        return self.folder / file_name(image_id)

    def exists(self, image_id: str) -> bool:
        return self.path(image_id).is_file()

    def prepare(self, params: dict, image_ids: Sequence[str], overwrite: bool = False) -> Manifest:
        """Create or check the folder for a run of ``params`` over ``image_ids``.

        An existing folder made with other parameters or inputs is refused (ArtifactError)
        unless ``overwrite``, which deletes its proposal files first, or unless it holds no
        proposal file yet (a first run that skipped every image: nothing to mix with).
        """
        check_distinct_stems(image_ids, self.folder)
        digest = inputs_hash(image_ids)
        manifest_path = self.folder / MANIFEST_NAME
        if manifest_path.exists():
            old = read_manifest(self.folder, KIND, max_version=FORMAT_VERSION)
            diffs = old.differences(params, digest)
            if diffs and not overwrite and any(self.folder.glob("*.npz")):
                raise ArtifactError(
                    f"{self.folder}: holds proposals made with other settings ({'; '.join(diffs)}); "
                    "use a new -o folder, or --overwrite to replace them"
                )
            if diffs:
                for stale in self.folder.glob("*.npz"):
                    stale.unlink()
            elif not overwrite:
                return old
        elif self.folder.exists() and not self.folder.is_dir():
            raise ArtifactError(f"{self.folder}: exists and is not a folder")
        elif overwrite:
            for stale in self.folder.glob("*.npz"):
                stale.unlink()
        manifest = Manifest(
            kind=KIND,
            format_version=FORMAT_VERSION,
            params=params,
            inputs_hash=digest,
            extra={"num_images": len(image_ids)},
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        write_manifest(self.folder, manifest)
        return manifest

    def write(self, image_id: str, proposals: Proposals, width: int, height: int) -> Path:
        path = self.path(image_id)
        atomic_save_npz(
            path,
            boxes=proposals.boxes,
            scores=proposals.scores,
            image_size=np.array([height, width], np.int32),
            image_id=np.array(image_id),
        )
        return path

    def read(self, image_id: str) -> Proposals:
        """The stored proposals of one image (DataError naming the file when missing or bad)."""
        path = self.path(image_id)
        if not path.is_file():
            raise DataError(path, f"no proposals for image {image_id!r} in {self.folder}")
        try:
            with np.load(path, allow_pickle=False) as data:
                return Proposals(data["boxes"], data["scores"])
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(path, f"unreadable proposals file ({exc})") from None


def open_proposals(folder: str | os.PathLike[str]) -> tuple[ProposalStore, Manifest]:
    """A finished or partial proposals folder for reading, with its manifest (for the next stages)."""
    manifest = read_manifest(folder, KIND, max_version=FORMAT_VERSION)
    return ProposalStore(folder), manifest
