"""The drawing helpers every picture shares: a figure on matplotlib's Agg canvas (no display, no pyplot
state shared between calls), boxes as rectangles, and the atomic PNG write.

matplotlib is imported inside the functions: ``rcnn --help`` must not load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.errors import RcnnError

#: Text sizes (points) that stay readable when a picture of ~1500 px is shown at half its size.
TITLE_SIZE = 14
LABEL_SIZE = 12
SMALL_SIZE = 10.5

#: Colours of the roles boxes play, the same in every picture.
FOREGROUND = "#00d000"  # fg RoIs, positive anchors
BACKGROUND = "#ff2a2a"  # bg RoIs, negative anchors
GROUND_TRUTH = "#1e50ff"  # ground-truth boxes


def new_figure(width: float, height: float, dpi: int = 110) -> Any:
    """A matplotlib ``Figure`` of ``width`` × ``height`` inches with constrained layout, on an Agg canvas.

    Raises :class:`RcnnError` when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RcnnError("rcnn show needs matplotlib: pip install matplotlib") from None
    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Any, path: Path) -> Path:
    """Write ``figure`` to ``path`` as a PNG, atomically (a reader never sees half a file)."""
    from rcnn_cli.artifacts import atomic_path

    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def show_image(axes: Any, rgb: np.ndarray, title: str | None = None) -> None:
    """``rgb`` uint8 [H, W, 3] on ``axes`` in pixel coordinates (y down), framed by the image."""
    axes.imshow(rgb, extent=(0, rgb.shape[1], rgb.shape[0], 0), interpolation="antialiased")
    axes.set_xlim(0, rgb.shape[1])
    axes.set_ylim(rgb.shape[0], 0)
    axes.tick_params(labelsize=SMALL_SIZE - 1.5)
    if title:
        axes.set_title(title, fontsize=LABEL_SIZE)


def draw_boxes(
    axes: Any,
    boxes: np.ndarray | Sequence[Sequence[float]],
    colour: Any,
    width: float = 1.5,
    style: str = "-",
    alpha: float = 1.0,
    label: str | None = None,
    zorder: float = 2.0,
) -> None:
    """Outline each of ``boxes`` [B, 4] (x1, y1, x2, y2, the axes' units); ``colour`` one colour or one
    per box. ``label`` goes to the legend once, whatever the number of boxes (also for none)."""
    from matplotlib.collections import PatchCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    patches = [Rectangle((x1, y1), x2 - x1, y2 - y1) for x1, y1, x2, y2 in boxes]
    collection = PatchCollection(
        patches, facecolor="none", edgecolor=colour, linewidth=width, linestyle=style, alpha=alpha
    )
    collection.set_zorder(zorder)
    axes.add_collection(collection)
    if label is not None:  # a proxy line: a PatchCollection has no legend entry of its own
        from matplotlib.colors import is_color_like

        legend_colour = colour if is_color_like(colour) else "grey"  # one colour, or many: grey
        proxy = Line2D([], [], color=legend_colour, linewidth=max(width, 2.0), linestyle=style, alpha=alpha)
        axes.add_line(proxy)
        proxy.set_label(label)


def legend(axes: Any, location: str = "upper right", columns: int = 1) -> None:
    """The axes' legend, readable over an image (an opaque frame)."""
    axes.legend(loc=location, fontsize=SMALL_SIZE, framealpha=0.92, ncols=columns)
