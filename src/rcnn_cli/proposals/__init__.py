"""Region proposals: one interface (:class:`ProposalMethod`), several methods, one registry.

* :class:`SelectiveSearch` — ours (C++ kernels), the paper's single / fast / quality modes;
* :class:`SelectivesearchPackage`, :class:`OpenCVSelectiveSearch` — other implementations;
* :class:`DenseWindows` — sliding windows; :class:`FileProposals` — precomputed files.

:mod:`rcnn_cli.proposals.registry` names them for every command; :mod:`rcnn_cli.proposals.sources`
gives a later stage an image's proposals; the folder format is in :mod:`rcnn_cli.proposals.storage`
and docs/FORMATS.md.

The names below are imported on first use, so that the light modules of this package (the registry)
can be read without loading torch or OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ProposalMethod": "base",
    "Proposals": "base",
    "DenseWindows": "dense",
    "OpenCVSelectiveSearch": "external",
    "SelectivesearchPackage": "external",
    "FileProposals": "files",
    "SelectiveSearch": "selective_search",
    "ProposalStore": "storage",
    "open_proposals": "storage",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
