"""How close an exported model's outputs are to the checkpoint's: what ``rcnn export`` checks before it
writes a file, and what the tests hold exported models to.

Fast R-CNN's outputs are row for row the given proposals', so they are compared element by element.
A Faster R-CNN's proposals are the graph's own, ranked by objectness and thinned by NMS; another
runtime computes the RPN's convolutions in another order, so two proposals whose objectness differ by
float rounding (~1e-6) can swap places, and where they also overlap, NMS can keep the other one of the
two. Its outputs are therefore compared proposal by proposal: each proposal of the checkpoint is looked
for among the export's (within ``box_tolerance`` px), the share found is the *agreement*, and scores
and boxes are compared on the proposals found. Measured on the bundled images: 2 of ~1000 proposals
swapped places, none missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    """max |exported − checkpoint| of the scores and of the boxes (proposals included), on the rows
    both have; ``shared``: the share of the checkpoint's proposals the export has too (1.0 for Fast
    R-CNN, whose proposals are inputs); ``moved``: the largest shift in rank of a shared proposal."""

    score_error: float
    box_error: float
    shared: float = 1.0
    moved: int = 0


def matching_rows(got: np.ndarray, want: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i into ``got``, j into ``want``) of boxes float [P, 4] / [Q, 4] equal to within
    ``tolerance`` in every coordinate; each row used once, the nearest in rank first."""
    if len(got) == 0 or len(want) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    distance = np.abs(got[:, None, :] - want[None, :, :]).max(axis=2)  # [P, Q]
    rank_gap = np.abs(np.arange(len(got))[:, None] - np.arange(len(want))[None, :])
    close = np.argwhere(distance <= tolerance)
    close = close[np.argsort(rank_gap[close[:, 0], close[:, 1]], kind="stable")]
    used_got, used_want, pairs = set(), set(), []
    for i, j in close.tolist():
        if i not in used_got and j not in used_want:
            used_got.add(i)
            used_want.add(j)
            pairs.append((i, j))
    pairs.sort()
    found = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return found[:, 0], found[:, 1]


def agreement(got: dict[str, np.ndarray], want: dict[str, np.ndarray], box_tolerance: float) -> Agreement:
    """Compare the named outputs (``scores`` [R, K], ``boxes`` [R, K, 4], and for a Faster R-CNN
    ``proposals`` [P, 4]) of the export (``got``) and of the checkpoint (``want``)."""
    if "proposals" not in want:
        return Agreement(_max_error(got["scores"], want["scores"]), _max_error(got["boxes"], want["boxes"]))
    i, j = matching_rows(got["proposals"], want["proposals"], box_tolerance)
    errors = [_max_error(got[name][i], want[name][j]) for name in ("proposals", "boxes")]
    return Agreement(
        score_error=_max_error(got["scores"][i], want["scores"][j]),
        box_error=max(errors),
        shared=len(j) / len(want["proposals"])
        if len(want["proposals"])
        else float(len(got["proposals"]) == 0),
        moved=int(np.abs(i - j).max(initial=0)),
    )


def _max_error(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape:
        return float("inf")
    return float(np.abs(got - want).max(initial=0.0))
