"""The proposals folder: one ``.npz`` per image plus ``manifest.json`` (docs/FORMATS.md).

Each image's file is written atomically, so a file that exists is complete: a rerun
skips it (resume), and several processes (``--workers``, ``--shard i/n``, torchrun
ranks) can fill one folder at the same time without coordination. The manifest pins
the method, its parameters and the input set; a rerun with anything else is refused
rather than mixing two kinds of proposals in one folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rcnn_cli.artifacts import (
    MANIFEST_NAME,
    Manifest,
    atomic_save_npz,
    atomic_write_json,
    check_distinct_stems,
    digest_of,
    read_manifest,
    safe_stem,
    write_manifest,
)
from rcnn_cli.errors import ArtifactError, DataError, RcnnError
from rcnn_cli.fingerprints import describe_mismatch
from rcnn_cli.proposals.base import Proposals

if TYPE_CHECKING:
    from rcnn_cli.data import ImageRecord
    from rcnn_cli.locks import FolderLock

KIND = "proposals"
#: 2: every image's file records the fingerprint of the image it was made from (rcnn_cli.fingerprints).
FORMAT_VERSION = 2


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


@dataclass(frozen=True)
class StoredImage:
    """What one image's file holds: its proposals, the (height, width) they were made for (None when
    the file does not say) and the fingerprint of the image they were made from ("" when unknown)."""

    proposals: Proposals
    image_size: tuple[int, int] | None
    fingerprint: str


class SkippedImage(DataError):  # noqa: N818 - it is the event, as StopIteration is
    """An image that ``rcnn propose`` skipped for a stated reason (the message is that reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(None, reason)


class ProposalStore:
    """Writes and reads one proposals folder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, image_id: str) -> Path:
        return self.folder / file_name(image_id)

    def exists(self, image_id: str) -> bool:
        return self.path(image_id).is_file()

    def prepare(
        self,
        params: dict,
        image_ids: Sequence[str],
        overwrite: bool = False,
        lock: FolderLock | None = None,
        origin: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Create or check the folder for a run of ``params`` over ``image_ids``; ``origin`` (the
        dataset and split they came from) goes into the manifest's ``extra`` for the next stages.

        An existing folder made with other parameters or inputs is refused (ArtifactError) unless
        ``overwrite``, which deletes its proposal files first, or unless it holds no proposal file yet
        (a first run that skipped every image: nothing to mix with). ``lock``, the caller's shared lock
        on the folder, is made exclusive while files are deleted: refused if another writer is running.
        """
        check_distinct_stems(image_ids, self.folder)
        digest = inputs_hash(image_ids)
        manifest_path = self.folder / MANIFEST_NAME
        if self.folder.exists() and not self.folder.is_dir():
            raise ArtifactError(f"{self.folder}: exists and is not a folder")
        if manifest_path.exists():
            old = read_manifest(self.folder, KIND, max_version=FORMAT_VERSION)
            diffs = old.differences(params, digest)
            if diffs and not overwrite and self._holds_results():
                raise ArtifactError(
                    f"{self.folder}: holds proposals made with other settings ({'; '.join(diffs)}); "
                    "use a new -o folder, or --overwrite to replace them"
                )
            if not diffs:
                return old  # the same run: resume (--overwrite only replaces files of other images)
        if overwrite:
            self._delete_results(lock)
        manifest = Manifest(
            kind=KIND,
            format_version=FORMAT_VERSION,
            params=params,
            inputs_hash=digest,
            # Not in params: the same images reached by another path are the same run.
            extra={"num_images": len(image_ids), **(origin or {})},
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        write_manifest(self.folder, manifest)
        return manifest

    def _holds_results(self) -> bool:
        """Whether any image's file is here (not counting the hidden temporaries of writes)."""
        return any(not p.name.startswith(".") for p in self.folder.glob("*.npz"))

    def _delete_results(self, lock: FolderLock | None) -> None:
        """Remove every image's file (and skip record), as the only writer of the folder."""
        if lock is not None:
            lock.exclusive()
        # The manifest goes first: a run killed half way through leaves a folder that says it is
        # incomplete, never old files under a manifest that describes them as new.
        (self.folder / MANIFEST_NAME).unlink(missing_ok=True)
        for stale in [*self.folder.glob("*.npz"), *self.folder.glob("*.skipped.json")]:
            stale.unlink()
        if lock is not None:
            lock.shared()

    def write(
        self, image_id: str, proposals: Proposals, width: int, height: int, fingerprint: str = ""
    ) -> Path:
        """Write one image's file; ``fingerprint``: of the image file the boxes were computed from."""
        path = self.path(image_id)
        atomic_save_npz(
            path,
            boxes=proposals.boxes,
            scores=proposals.scores,
            image_size=np.array([height, width], np.int32),
            image_id=np.array(image_id),
            image_fingerprint=np.array(fingerprint),
        )
        return path

    def _load(self, image_id: str) -> StoredImage | None:
        """Everything an image's file holds, read once; None without a file (DataError naming a bad one)."""
        path = self.path(image_id)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                boxes = np.asarray(data["boxes"], dtype=np.float32).reshape(-1, 4)
                # A file the user made may lack scores (its boxes are then taken as best first), the
                # image size or the fingerprint (an older version's, too).
                proposals = Proposals(boxes, data["scores"]) if "scores" in data else Proposals.ranked(boxes)
                size = tuple(int(v) for v in data["image_size"]) if "image_size" in data else None
                fingerprint = str(data["image_fingerprint"]) if "image_fingerprint" in data else ""
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(path, f"unreadable proposals file ({exc})") from None
        return StoredImage(proposals, size, fingerprint)  # type: ignore[arg-type]

    def stored_fingerprint(self, image_id: str) -> str | None:
        """The fingerprint recorded in an image's file: None without a file, "" when it records none
        (a file from an older version, or one the user made)."""
        stored = self._load(image_id)
        return None if stored is None else stored.fingerprint

    def is_done(self, image_id: str, fingerprint: str, replace_foreign: bool = False) -> bool:
        """True when the image's file exists and was made from the image whose fingerprint is given.
        A file made from another image with the same id is :class:`ArtifactError`, or, with
        ``replace_foreign`` (``--overwrite``), not done: it will be replaced."""
        stored = self.stored_fingerprint(image_id)
        if stored is None:
            return False
        if stored and fingerprint and stored != fingerprint:
            if replace_foreign:
                return False
            raise ArtifactError(
                describe_mismatch(self.path(image_id), image_id, stored)
                + "; use a new -o folder, or --overwrite to replace them"
            )
        return True

    def skip_path(self, image_id: str) -> Path:
        return self.folder / (file_name(image_id).removesuffix(".npz") + ".skipped.json")

    def record_skip(self, image_id: str, fingerprint: str, reason: str) -> None:
        """Remember that ``rcnn propose`` skipped this image, and why: later stages skip it with the same
        line instead of calling the folder partial. One small file per image, so shards never collide."""
        atomic_write_json(
            self.skip_path(image_id), {"image_id": image_id, "fingerprint": fingerprint, "reason": reason}
        )

    def skip_reason(self, image_id: str, fingerprint: str) -> str | None:
        """Why this image was skipped, when it was skipped as it is now (the same bytes); else None."""
        path = self.skip_path(image_id)
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text())
            recorded, reason = str(doc["fingerprint"]), str(doc["reason"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: try the image again
        return reason if not (recorded and fingerprint and recorded != fingerprint) else None

    def read_checked(self, record: ImageRecord, fingerprint: str) -> Proposals:
        """One image's proposals for a later stage: refused (ArtifactError naming the file) when they
        were made from another image (fingerprint) or an image of another size."""
        path = self.path(record.image_id)
        stored = self._load(record.image_id)
        if stored is None:
            reason = self.skip_reason(record.image_id, fingerprint)
            if reason is not None:
                raise SkippedImage(reason)
            raise DataError(path, f"no proposals for image {record.image_id!r} in {self.folder}")
        if stored.fingerprint and fingerprint and stored.fingerprint != fingerprint:
            raise ArtifactError(
                describe_mismatch(path, record.path, stored.fingerprint) + "; rerun 'rcnn propose'"
            )
        size = stored.image_size
        if size is not None and size != (record.height, record.width):
            raise ArtifactError(
                f"{path}: stale proposals: made for a {size[1]}x{size[0]} image, {record.path.name} is "
                f"{record.width}x{record.height}; rerun 'rcnn propose' on this dataset"
            )
        return stored.proposals

    def read(self, image_id: str) -> Proposals:
        """The stored proposals of one image (DataError naming the file when missing or bad)."""
        stored = self._load(image_id)
        if stored is None:
            path = self.path(image_id)
            raise DataError(path, f"no proposals for image {image_id!r} in {self.folder}")
        return stored.proposals


def open_proposals(folder: str | os.PathLike[str]) -> tuple[ProposalStore, Manifest]:
    """A finished or partial proposals folder for reading, with its manifest (for the next stages)."""
    manifest = read_manifest(folder, KIND, max_version=FORMAT_VERSION)
    return ProposalStore(folder), manifest
