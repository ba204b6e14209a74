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

from rcnn_cli.lazy import lazy_names

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

__getattr__, __all__ = lazy_names(__name__, _HOMES)
