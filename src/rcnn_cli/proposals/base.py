"""What every proposal method shares: the :class:`Proposals` result and the
:class:`ProposalMethod` interface.

A method turns one image into boxes. Selective Search, the ``selectivesearch``
package, OpenCV-contrib, dense windows and precomputed files all implement the same
two-member interface, and so can a trained region proposal network later: it needs
only ``propose(image, record)`` and ``params()``.

Shapes: N proposals per image; boxes are float32 [N, 4] ``x1, y1, x2, y2`` in
continuous pixels of the original image (docs/ARCHITECTURE.md, "Conventions"), best first when the method
ranks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from rcnn_cli.data import ImageRecord


@dataclass(frozen=True)
class Proposals:
    """Boxes float32 [N, 4] (xyxy, original pixels) and scores float32 [N] (higher is better)."""

    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.ascontiguousarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.ascontiguousarray(self.scores, dtype=np.float32).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"Proposals: {len(boxes)} boxes but {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def ranked(cls, boxes: np.ndarray) -> Proposals:
        """Boxes already best first, without scores of their own: scores fall from 1 to 0."""
        n = len(boxes)
        return cls(boxes, np.linspace(1.0, 0.0, n, dtype=np.float32) if n > 1 else np.ones(n, np.float32))


@runtime_checkable
class ProposalMethod(Protocol):
    """One way to get proposals. ``name`` is what ``rcnn propose --method`` calls it.

    ``needs_image`` is False for methods that read boxes from elsewhere (files): the
    runner then does not decode the image and passes ``image=None``.
    """

    name: str
    needs_image: bool

    def params(self) -> dict[str, Any]:
        """Everything that changes the output, as plain JSON data (stored in the manifest)."""
        ...

    def propose(self, image: np.ndarray | None, record: ImageRecord) -> Proposals:
        """Proposals for one image: ``image`` is uint8 [H, W, 3] RGB (or None, see above)."""
        ...


def finalize_boxes(
    boxes: np.ndarray, scores: np.ndarray, width: int, height: int, min_size: float, max_proposals: int
) -> Proposals:
    """Clip to the image, drop boxes narrower or lower than ``min_size`` (and empty ones),
    drop exact duplicates (keeping the first, i.e. best, copy), keep ``max_proposals``.

    ``boxes`` float [N, 4] best first; ``max_proposals <= 0`` keeps all.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    keep = (w > 0) & (h > 0) & (w >= min_size) & (h >= min_size)
    boxes, scores = boxes[keep], scores[keep]
    if len(boxes):
        _, first = np.unique(boxes, axis=0, return_index=True)
        first.sort()
        boxes, scores = boxes[first], scores[first]
    if max_proposals > 0:
        boxes, scores = boxes[:max_proposals], scores[:max_proposals]
    return Proposals(boxes, scores)
