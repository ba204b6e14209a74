"""Region proposals: one interface (:class:`ProposalMethod`), several methods.

* :class:`SelectiveSearch` — ours (C++ kernels), the paper's single / fast / quality modes;
* :class:`SelectivesearchPackage`, :class:`OpenCVSelectiveSearch` — other implementations;
* :class:`DenseWindows` — sliding windows; :class:`FileProposals` — precomputed files.
The proposals folder format is in :mod:`rcnn_cli.proposals.storage` and docs/FORMATS.md.
"""

from rcnn_cli.proposals.base import ProposalMethod, Proposals
from rcnn_cli.proposals.dense import DenseWindows
from rcnn_cli.proposals.external import OpenCVSelectiveSearch, SelectivesearchPackage
from rcnn_cli.proposals.files import FileProposals
from rcnn_cli.proposals.selective_search import SelectiveSearch
from rcnn_cli.proposals.storage import ProposalStore, open_proposals

__all__ = [
    "DenseWindows",
    "FileProposals",
    "OpenCVSelectiveSearch",
    "ProposalMethod",
    "ProposalStore",
    "Proposals",
    "SelectiveSearch",
    "SelectivesearchPackage",
    "open_proposals",
]
