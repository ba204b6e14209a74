"""Where each box's label goes in a picture: inside the picture, and clear of the labels placed before.

Pure geometry on integer pixel rectangles ``(x1, y1, x2, y2)``, ``x2``/``y2`` exclusive, so that it is
tested without drawing. Labels are placed one by one, most important (highest score) first: each takes
the first of its box's candidate positions (:func:`candidates`) that overlaps no label placed so far,
or, in a picture too crowded for that, the one that overlaps them least.
"""

from __future__ import annotations

from collections.abc import Sequence

Rect = tuple[int, int, int, int]


def candidates(box: Rect, size: tuple[int, int], width: int, height: int) -> list[Rect]:
    """The positions tried for a label of ``size`` (w, h) on ``box``, in order of preference: above the
    box, below it, inside at its top, inside at its bottom, each left-aligned then right-aligned. Each
    is shifted into the ``width`` x ``height`` picture (a box at the edge gets its label inside)."""
    x1, y1, x2, y2 = box
    w, h = size
    heights = (y1 - h, y2, y1, y2 - h)  # above, below, inside at the top, inside at the bottom
    # Left-aligned first: the label starts where its box does, where the eye looks for it.
    spots = [(x1, y) for y in heights] + [(x2 - w, y) for y in heights]
    placed: list[Rect] = []
    for x, y in spots:
        x = max(0, min(x, width - w))  # a label wider than the picture starts at its left edge
        y = max(0, min(y, height - h))
        rect = (x, y, x + w, y + h)
        if rect not in placed:
            placed.append(rect)
    return placed


def overlap(a: Rect, b: Rect) -> int:
    """The area two rectangles share (0 when they only touch)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def place_labels(
    boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]], width: int, height: int
) -> list[Rect]:
    """One label rectangle per box, in the order given (most important first; see the module)."""
    placed: list[Rect] = []
    for box, size in zip(boxes, sizes, strict=True):
        options = candidates(box, size, width, height)
        covered = [sum(overlap(option, other) for other in placed) for option in options]
        placed.append(options[covered.index(min(covered))])  # the first that overlaps least: 0 if any
    return placed
