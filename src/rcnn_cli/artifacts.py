"""Artifact folders on disk: atomic writes and manifests.

Every stage's output folder (proposals/, features/, runs/NAME/, detections/) carries a
``manifest.json`` that says what made it: the kind of artifact, its format version, the
command and parameters, the package version and a digest of the inputs. A later stage
(or a rerun of the same stage) reads it back and refuses a stale or foreign folder with
a message that names what differs, instead of silently mixing results.

Writes go to a temporary file in the same folder and are renamed into place, so an
interrupted stage never leaves a half-written file under the final name. Files get the
permissions of an ordinary ``open()`` (0666 minus the umask), so teammates can read them.

Image ids become file names inside these folders only through :func:`safe_stem`, the one
mapping every writer and reader uses: an id can never name a path outside its folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli import __version__
from rcnn_cli.errors import ArtifactError, DataError, RcnnError, one_line
from rcnn_cli.temporaries import temporary_prefix

MANIFEST_NAME = "manifest.json"

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._-]")
# What safe_stem appends: an id that already ends like this is rewritten too, so that an id kept
# as it is can never equal another id's rewritten name.
_DIGEST_SUFFIX = re.compile(r".*-[0-9a-f]{8}")
MAX_STEM = 200
"""Longest stem kept as it is: with a suffix such as ``_boxes.mat`` it stays under NAME_MAX (255)."""


def safe_stem(image_id: str) -> str:
    """The file-name stem of ``image_id`` in an artifact folder (``<stem>.npz``, ``<stem>.json`` ...).

    An id made only of ``A-Z a-z 0-9 . _ -``, not starting with ``.``, at most :data:`MAX_STEM`
    characters and not ending in ``-`` plus 8 hex digits is its own stem. Any other id (a path
    such as ``../../tmp/x`` or ``/abs/x``, spaces, the empty id ...) has those characters replaced
    by ``_``, leading dots dropped, is cut to fit, and gets ``-<8 hex digits of sha256(id)>``
    appended. So a stem never holds a separator or ``..``, the mapping is the same in every
    process and version (docs/FORMATS.md), and two ids share a stem only if their digests collide
    (:func:`check_distinct_stems` refuses that).
    """
    if (
        _SAFE_NAME.fullmatch(image_id)
        and not image_id.startswith(".")
        and len(image_id) <= MAX_STEM
        and not _DIGEST_SUFFIX.fullmatch(image_id)
    ):
        return image_id
    # surrogatepass: ids from undecodable file names (os.fsdecode) still have a digest.
    digest = hashlib.sha256(image_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    readable = _UNSAFE_CHAR.sub("_", image_id).lstrip(".")[: MAX_STEM - len(digest) - 1]
    return f"{readable}-{digest}"


def check_distinct_stems(image_ids: Iterable[str], folder: str | os.PathLike[str]) -> None:
    """Raise :class:`ArtifactError` if two of ``image_ids`` would share a file in ``folder``.

    Only a digest collision between two rewritten ids can cause it; writers call this before
    writing so that one image's file never silently replaces another's.
    """
    seen: dict[str, str] = {}
    for image_id in image_ids:
        stem = safe_stem(image_id)
        other = seen.setdefault(stem, image_id)
        if other != image_id:
            raise ArtifactError(
                f"{folder}: image ids {other!r} and {image_id!r} would share the file name {stem!r}; "
                "rename one of them"
            )


def _create_temp(folder: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file ``folder/<prefix><random><suffix>`` and return its path.

    ``os.open`` with mode 0666 lets the kernel apply the umask (and default ACLs), as for any
    file a program writes; ``tempfile.mkstemp`` would force 0600 whatever the umask.
    """
    while True:
        candidate = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    The temporary name (``.NAME.<host>@<pid>.<random>.tmp<suffix>``) keeps ``path``'s suffix
    (``np.savez`` and friends look at it).
    On an exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The name carries its writer, so a later run can remove it if this process is killed before the
    # rename (rcnn_cli.temporaries).
    tmp = _create_temp(target.parent, temporary_prefix(target.name), f".tmp{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_parent_folder(path: str | os.PathLike[str]) -> None:
    """Refuse (:class:`RcnnError`, one line naming it) an output ``path`` whose folder does not exist
    or is not a folder, for outputs that must not create folders (:func:`atomic_path` would)."""
    parent = Path(path).parent
    if not parent.is_dir():
        problem = "is not a folder" if parent.exists() else "does not exist"
        raise RcnnError(one_line(f"{path}: the folder {parent} {problem}"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_copy(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Copy the file ``source`` to ``path`` atomically (a reader sees the old file or the whole copy)."""
    import shutil

    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def read_torch_file(path: str | os.PathLike[str], what: str, user_file: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; any failure is one :class:`ArtifactError` line
    naming ``path`` and what is wrong (:class:`DataError` for a ``user_file``, e.g. ImageNet weights the
    user names, rather than one of our artifacts). Every ``.pt``/``.pth`` the toolkit reads goes here.

    ``weights_only=True`` lets a file hold only tensors and plain data, never code. torch's own message
    for a refused file advises ``weights_only=False``, which would run whatever code the file carries:
    that advice is dropped, and only torch's reason is kept.
    """
    import torch

    path = Path(path)
    problem = None
    if not path.is_file():
        problem = f"{what} not found"
    else:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # zip, pickle, EOF, OS and torch errors alike: not what it claims to be
            problem = _why_unreadable(path, what, exc)
    raise (DataError(path, problem) if user_file else ArtifactError(f"{path}: {problem}"))


def _why_unreadable(path: Path, what: str, exc: Exception) -> str:
    import pickle
    import zipfile

    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
        return f"not a {what} (not a file written by torch.save)"
    if isinstance(exc, pickle.UnpicklingError):
        return (
            f"not a {what} this toolkit can read safely ({_unpickling_reason(str(exc))}); "
            "it reads only files of tensors and plain data"
        )
    return f"not a readable {what} ({type(exc).__name__}: {_short(str(exc))})"


def _unpickling_reason(message: str) -> str:
    """torch's reason for refusing a file, without its advice (weights_only=False, filing an issue)."""
    if "WeightsUnpickler error:" in message:
        detail = message.split("WeightsUnpickler error:", 1)[1].strip()
        first = detail.split(". ")[0].strip()  # what follows is advice to allow-list the class
        if first:
            return _short(first)
    advice = ("weights only load failed", "weights_only", "please file an issue", "check the documentation")
    for paragraph in message.split("\n\n"):
        line = paragraph.strip()
        if line and not any(word in line.lower() for word in advice):
            return _short(line)
    return "unpickling failed"


def _short(text: str, limit: int = 160) -> str:
    """The first line of ``text``, at most ``limit`` characters (a message stays one line)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def atomic_save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def file_digest(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def digest_of(strings: Iterable[str]) -> str:
    """SHA-256 of a sequence of strings (order matters), hex. Use for lists of ids or file digests."""
    h = hashlib.sha256()
    for s in strings:
        h.update(s.encode())
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What made an artifact folder.

    ``params`` holds the parameters that change the folder's content (a rerun with other
    values must not mix into it); ``inputs_hash`` identifies the inputs (e.g. a digest of
    the image ids and files).
    """

    kind: str
    format_version: int
    params: Mapping[str, Any]
    inputs_hash: str = ""
    command: str = field(default_factory=lambda: " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]))
    package_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    extra: Mapping[str, Any] = field(default_factory=dict)

    def differences(self, params: Mapping[str, Any], inputs_hash: str | None = None) -> list[str]:
        """Human-readable list of what differs from ``params`` / ``inputs_hash`` (empty if compatible)."""
        diffs = []
        mine = _jsonable(self.params)
        theirs = _jsonable(params)
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                diffs.append(f"{key}: {mine.get(key)!r} on disk, {theirs.get(key)!r} now")
        if inputs_hash is not None and inputs_hash != self.inputs_hash:
            diffs.append("the inputs differ from those the folder was made from")
        return diffs

    def check_compatible(
        self, folder: str | os.PathLike[str], params: Mapping[str, Any], inputs_hash: str | None = None
    ) -> None:
        """Raise :class:`ArtifactError` naming the folder and every difference."""
        diffs = self.differences(params, inputs_hash)
        if diffs:
            raise ArtifactError(f"{folder}: made with other settings ({'; '.join(diffs)})")


def write_manifest(folder: str | os.PathLike[str], manifest: Manifest) -> Path:
    path = Path(folder) / MANIFEST_NAME
    atomic_write_json(path, _jsonable(asdict(manifest)))
    return path


def read_manifest(folder: str | os.PathLike[str], kind: str, max_version: int | None = None) -> Manifest:
    """Read ``folder/manifest.json`` and check it describes an artifact of ``kind``.

    Raises :class:`ArtifactError` when the folder or manifest is missing, unreadable, of
    another kind, or newer than this package can read.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such folder")
    if not path.is_file():
        raise ArtifactError(f"{folder}: no {MANIFEST_NAME}; not a {kind} folder made by rcnn (or incomplete)")
    try:
        data = json.loads(path.read_text())
        manifest = Manifest(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc})") from None
    if manifest.kind != kind:
        raise ArtifactError(f"{folder}: holds {manifest.kind}, expected {kind}")
    if max_version is not None and manifest.format_version > max_version:
        raise ArtifactError(
            f"{folder}: format version {manifest.format_version} is newer than this rcnn-cli reads "
            f"({max_version}); upgrade rcnn-cli"
        )
    return manifest


def _jsonable(obj: Any) -> Any:
    """Plain JSON types (tuples become lists, paths strings) so comparisons survive a round trip."""
    return json.loads(json.dumps(obj, default=str))


def folder_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes on disk of every file under ``path`` (a stage's cache, a run's artifacts); a file's own
    size; 0 when it does not exist."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
