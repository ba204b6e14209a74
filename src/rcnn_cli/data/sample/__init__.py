"""A small real dataset shipped with the package: a subset of BCCD (blood cells, MIT licence) in VOC layout.

See README.md in this folder for its source, licence and how the subset was chosen.
"""

from __future__ import annotations

from pathlib import Path


def sample_dataset_path() -> Path:
    """The folder of the bundled BCCD sample (VOC layout: Annotations/, JPEGImages/, ImageSets/Main/)."""
    return Path(__file__).resolve().parent
