"""``--overwrite`` without losing anything on the way: the new result is built beside the old folder and
swapped in only once it is complete.

``rcnn detect -o DIR --overwrite`` writes into ``DIR.rcnn-next``; when it has finished, ``DIR`` becomes
``DIR.rcnn-old``, ``DIR.rcnn-next`` becomes ``DIR``, and the old one is removed. A run killed before the
swap leaves ``DIR`` exactly as it was (its manifest still describes its files) and a rerun resumes the
``.rcnn-next`` folder; a run killed inside the swap is finished by :func:`finish_swap` on the next run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

NEXT_SUFFIX = ".rcnn-next"
OLD_SUFFIX = ".rcnn-old"


def next_folder(target: str | os.PathLike[str]) -> Path:
    """Where the replacement of ``target`` is built."""
    target = Path(target)
    return target.with_name(target.name + NEXT_SUFFIX)


def _old_folder(target: Path) -> Path:
    return target.with_name(target.name + OLD_SUFFIX)


def swap_in(target: str | os.PathLike[str]) -> None:
    """Replace ``target`` by its finished :func:`next_folder` (two renames, then the old one goes)."""
    target = Path(target)
    old = _old_folder(target)
    if target.exists():
        os.replace(target, old)
    os.replace(next_folder(target), target)
    shutil.rmtree(old, ignore_errors=True)


def finish_swap(target: str | os.PathLike[str]) -> None:
    """Complete a swap that a killed run left half done (a no-op when there is none).

    ``DIR.rcnn-old`` exists only inside :func:`swap_in`, after ``DIR.rcnn-next`` was complete: with
    ``DIR`` gone the new folder is renamed into place; with ``DIR`` there, only the old one remains to go.
    """
    target = Path(target)
    old = _old_folder(target)
    if not old.exists():
        return
    if not target.exists():
        os.replace(next_folder(target) if next_folder(target).exists() else old, target)
    shutil.rmtree(old, ignore_errors=True)
