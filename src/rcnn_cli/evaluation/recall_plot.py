"""The recall-against-IoU figure (as Fig. 4 of the Faster R-CNN paper): one line per proposal source and
budget, recall 0..1 against IoU 0.5..0.95, written as a PNG.

matplotlib is imported inside :func:`write_recall_plot` only (``rcnn --help`` must not load it), and
drawn with its Agg canvas: no display, no pyplot state shared between calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rcnn_cli.artifacts import atomic_path, check_parent_folder
from rcnn_cli.errors import RcnnError

#: One line style per budget (the first N given solid, the second dashed, ...), the same for every source.
_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class PlotLine:
    """One line of the figure: ``recall`` [T] at the figure's thresholds [T], for proposals ``source``
    at ``top_n`` boxes per image (None: all)."""

    source: str
    top_n: int | None
    recall: Sequence[float]

    @property
    def legend(self) -> str:
        return f"{self.source} ({self.top_n if self.top_n is not None else 'all'})"


def check_plot_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, or :class:`RcnnError` when it is not ``*.png`` or its folder does not exist."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise RcnnError(f"{path}: the recall plot is a PNG; give a file name ending in .png")
    check_parent_folder(path)
    return path


def write_recall_plot(
    path: str | os.PathLike[str], thresholds: Sequence[float], lines: Sequence[PlotLine], title: str
) -> Path:
    """Draw recall (y, 0..1) against IoU (x, ``thresholds`` [T]) with one line per ``lines`` entry and a
    legend "source (N)", and write it to ``path`` (a PNG, atomically). Returns ``path``.

    Each source has one colour and marker, each budget one line style. Raises
    :class:`RcnnError` for a path that :func:`check_plot_path` refuses, or when matplotlib is missing.
    """
    path = check_plot_path(path)
    if not lines:
        raise RcnnError("no recall curves to plot")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RcnnError("--recall-plot needs matplotlib: pip install matplotlib") from None

    figure = Figure(figsize=(6.4, 4.8), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    sources = list(dict.fromkeys(line.source for line in lines))
    budgets = list(dict.fromkeys(line.top_n for line in lines))
    for line in lines:
        which = sources.index(line.source)
        axes.plot(
            list(thresholds),
            list(line.recall),
            linestyle=_STYLES[budgets.index(line.top_n) % len(_STYLES)],
            marker=_MARKERS[which % len(_MARKERS)],
            markersize=4,
            linewidth=1.8,
            color=f"C{which % 10}",
            label=line.legend,
            clip_on=False,  # a recall of 1, or the first and last threshold, sits on the frame: draw it whole
        )
    axes.set_xlim(min(thresholds), max(thresholds))
    axes.set_ylim(0.0, 1.0)
    axes.set_xticks(list(thresholds), [f"{t:g}" for t in thresholds])
    axes.set_yticks([i / 10 for i in range(11)])
    axes.tick_params(labelsize=10)
    axes.set_xlabel("IoU", fontsize=12)
    axes.set_ylabel("Recall", fontsize=12)
    axes.set_title(title, fontsize=13)
    axes.grid(True, linestyle=":", linewidth=0.8, alpha=0.7)
    axes.legend(loc="lower left", fontsize=10, framealpha=0.9)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path
