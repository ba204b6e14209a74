"""The one registry of proposal methods: every command that computes proposals builds them here.

``rcnn propose --method NAME`` and ``--proposal-method NAME`` of ``detect``/``compress`` name a
:data:`METHODS` entry; :class:`ProposalSettings` holds the user's choices and checks them when it is
built; :func:`build_method` turns them into a :class:`~rcnn_cli.proposals.base.ProposalMethod`.

This module imports nothing heavy (no torch, no cv2): the command line reads the method names and
modes from it at start-up, and the implementations are imported only when one is built.
A new proposal stage (e.g. a region proposal network) adds one :data:`METHODS` entry and one
builder in :func:`build_method`; docs/ARCHITECTURE.md walks through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rcnn_cli.errors import RcnnError
from rcnn_cli.proposals.mat_layouts import MAT_LAYOUTS
from rcnn_cli.proposals.strategies import MODES

if TYPE_CHECKING:
    from rcnn_cli.proposals.base import ProposalMethod


@dataclass(frozen=True)
class MethodEntry:
    """A proposal method as the command line shows it.

    ``imports_boxes``: the method reads precomputed boxes (``--from``) instead of looking at images,
    so it cannot run on the fly inside ``detect``. ``uses_mode``: ``--mode`` changes its output.
    ``needs_model``: it runs a trained network (``--model``); ``detect`` uses a Faster R-CNN's own.
    """

    name: str
    summary: str
    imports_boxes: bool = False
    uses_mode: bool = False
    needs_model: bool = False


METHODS: dict[str, MethodEntry] = {
    entry.name: entry
    for entry in (
        MethodEntry(
            "selective-search", "ours (C++ kernels), the paper's single/fast/quality", uses_mode=True
        ),
        MethodEntry("selectivesearch", "the selectivesearch pip package"),
        MethodEntry("opencv", "OpenCV-contrib's ximgproc Selective Search", uses_mode=True),
        MethodEntry("dense", "sliding windows of several sizes and aspect ratios"),
        MethodEntry("file", "precomputed boxes (.mat/.npz/.json) from --from", imports_boxes=True),
        MethodEntry(
            "rpn", "a trained region proposal network from --model (rcnn train --rpn)", needs_model=True
        ),
    )
}

#: Methods that look at the image, so ``detect``/``compress`` can run them on the fly.
ON_THE_FLY_METHODS: tuple[str, ...] = tuple(
    n for n, e in METHODS.items() if not e.imports_boxes and not e.needs_model
)
#: Selective Search modes (``--mode``): 1, 12 or 80 strategies.
SELECTIVE_SEARCH_MODES: tuple[str, ...] = tuple(MODES)


@dataclass(frozen=True)
class ProposalSettings:
    """What the user chose for a proposal method; checked when built (:class:`RcnnError` names the option).

    ``max_proposals``: best boxes kept per image, 0 keeps all. ``min_size``: boxes narrower or lower
    than this many pixels are dropped. ``source``/``mat_layout``: for ``file`` only. ``model``,
    ``rpn_layer`` (ProposalLayerConfig fields to override) and ``device``: for ``rpn`` only.
    """

    method: str = "selective-search"
    mode: str = "fast"
    max_proposals: int = 2000
    min_size: float = 0.0
    seed: int = 0
    source: str | None = None
    mat_layout: str = "x1y1x2y2-0based"
    model: str | None = None
    rpn_layer: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise RcnnError(f"unknown proposal method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if self.mode not in SELECTIVE_SEARCH_MODES:
            raise RcnnError(f"--mode {self.mode}: choose one of {', '.join(SELECTIVE_SEARCH_MODES)}")
        if self.max_proposals < 0:
            raise RcnnError(f"--max-proposals {self.max_proposals}: must be >= 0 (0 keeps all)")
        if not self.min_size >= 0:  # also refuses NaN
            raise RcnnError(f"--min-size {self.min_size}: must be >= 0")
        if self.mat_layout not in MAT_LAYOUTS:
            raise RcnnError(f"--mat-layout {self.mat_layout}: choose one of {', '.join(MAT_LAYOUTS)}")
        if METHODS[self.method].imports_boxes and self.source is None:
            raise RcnnError(f"--method {self.method} needs --from FOLDER_OR_FILE (the precomputed proposals)")
        if METHODS[self.method].needs_model and self.model is None:
            raise RcnnError(f"--method {self.method} needs --model RUN/model.pt (from rcnn train --rpn)")
        if self.model is not None and not METHODS[self.method].needs_model:
            raise RcnnError(f"--model is for --method rpn; --method {self.method} does not read it")
        if self.rpn_layer and self.method != "rpn":
            raise RcnnError(f"the --rpn-* options are for --method rpn, not {self.method}")


def build_method(settings: ProposalSettings) -> ProposalMethod:
    """The :class:`~rcnn_cli.proposals.base.ProposalMethod` that ``settings`` describe."""
    s = settings
    if s.method == "selective-search":
        from rcnn_cli.proposals.selective_search import SelectiveSearch

        return SelectiveSearch(mode=s.mode, max_proposals=s.max_proposals, min_size=s.min_size, seed=s.seed)
    if s.method == "selectivesearch":
        from rcnn_cli.proposals.external import SelectivesearchPackage

        return SelectivesearchPackage(max_proposals=s.max_proposals, min_size=s.min_size)
    if s.method == "opencv":
        from rcnn_cli.proposals.external import OpenCVSelectiveSearch

        return OpenCVSelectiveSearch(mode=s.mode, max_proposals=s.max_proposals, min_size=s.min_size)
    if s.method == "dense":
        from rcnn_cli.proposals.dense import DenseWindows

        return DenseWindows(max_proposals=s.max_proposals, min_size=s.min_size, seed=s.seed)
    if s.method == "rpn":
        from rcnn_cli.proposals.rpn import RPNProposals

        assert s.model is not None  # checked in ProposalSettings
        return RPNProposals(
            s.model, dict(s.rpn_layer), max_proposals=s.max_proposals, min_size=s.min_size, device=s.device
        )
    from rcnn_cli.proposals.files import FileProposals

    assert s.source is not None  # checked in ProposalSettings
    return FileProposals(
        s.source, mat_layout=s.mat_layout, max_proposals=s.max_proposals, min_size=s.min_size
    )
