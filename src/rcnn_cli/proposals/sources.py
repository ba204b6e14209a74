"""Where a later stage gets an image's proposals: a proposals folder, or a method run on the fly.

A :data:`ProposalSource` is ``(record, rgb or None) -> float32 [R, 4]`` boxes ``x1, y1, x2, y2`` in
original pixels, best first. ``rcnn detect`` and ``rcnn compress --distill-on`` take either kind
through the same two options (``--proposals FOLDER`` / ``--proposal-method NAME``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.errors import RcnnError
from rcnn_cli.proposals.registry import METHODS, ProposalSettings, build_method

#: (record, rgb image uint8 [H, W, 3] or None) -> proposals float32 [R, 4] in original pixels, best first.
ProposalSource = Callable[[Any, "np.ndarray | None"], np.ndarray]


def folder_source(folder: str | Path) -> ProposalSource:
    """Proposals read from a proposals folder (``rcnn propose``'s output, docs/FORMATS.md): its manifest
    is checked when the source is made, and each image's file against the image it is read for (made
    from the same bytes, of the same size), so a stale or foreign folder is refused, naming the file."""
    from rcnn_cli.fingerprints import Fingerprints
    from rcnn_cli.proposals.storage import open_proposals

    store, _manifest = open_proposals(folder)
    fingerprints = Fingerprints()

    def read(record: Any, _rgb: np.ndarray | None) -> np.ndarray:
        return store.read_checked(record, fingerprints.of_existing(record.path)).boxes

    return read


def method_source(settings: ProposalSettings) -> ProposalSource:
    """Proposals computed on the fly for each image by the method ``settings`` name."""
    if METHODS[settings.method].imports_boxes:
        raise RcnnError(f"--proposal-method {settings.method} cannot run on the fly; use --proposals FOLDER")
    method = build_method(settings)

    def propose(record: Any, rgb: np.ndarray | None) -> np.ndarray:
        return method.propose(rgb, record).boxes

    return propose
