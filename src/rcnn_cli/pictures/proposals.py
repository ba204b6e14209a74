"""``rcnn show proposals``: an image's top-N region proposals (R-CNN §2.1 uses ~2000 Selective Search
windows per image) and a histogram of all of them by size, sqrt(w·h), next to the ground truth's sizes.

The boxes come from a :data:`rcnn_cli.proposals.sources.ProposalSource`: a proposals folder of
``rcnn propose`` or a method run on the fly, best first, as every later stage reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.errors import RcnnError
from rcnn_cli.pictures.figure import (
    GROUND_TRUTH,
    LABEL_SIZE,
    SMALL_SIZE,
    TITLE_SIZE,
    draw_boxes,
    legend,
    new_figure,
    save_png,
    show_image,
)


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """boxes float [P, 4] -> float64 [P]: sqrt(area), the side of the square of the same area."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))


def size_bins(sizes: np.ndarray, count: int = 30) -> np.ndarray:
    """float64 [count + 1] log-spaced bin edges over ``sizes`` (proposals span 10 px to the whole image,
    so equal-width bins would crowd the small ones into one bar)."""
    positive = sizes[sizes > 0]
    low = max(float(positive.min()) if positive.size else 1.0, 1.0)
    high = max(float(positive.max()) if positive.size else 2.0, low * 1.5)
    return np.geomspace(low / 1.05, high * 1.05, count + 1)


def draw_proposals(
    rgb: np.ndarray,
    boxes: np.ndarray,
    path: Path,
    *,
    top_n: int = 50,
    gt_boxes: np.ndarray | None = None,
    title: str = "",
    source: str = "",
) -> Path:
    """Write the picture: ``rgb`` uint8 [H, W, 3] with the first ``top_n`` of ``boxes`` float [P, 4]
    (original pixels, best first) coloured by rank, and the histogram of all P by size; ``gt_boxes``
    [G, 4] drawn on the image and marked on the histogram."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        raise RcnnError(f"{title or 'the image'}: there are no proposals to show")
    shown = boxes[:top_n]
    gt = np.zeros((0, 4), np.float32) if gt_boxes is None else np.asarray(gt_boxes, np.float32).reshape(-1, 4)

    height, width = rgb.shape[:2]
    aspect = height / width
    figure = new_figure(15.0, max(5.6, 7.4 * aspect + 1.3))
    image_axes, hist_axes = figure.subplots(1, 2, width_ratios=[1.35, 1.0])
    show_image(image_axes, rgb)
    image_axes.set_title(
        f"The top {len(shown)} of {len(boxes)} proposals, best drawn on top", fontsize=LABEL_SIZE
    )
    # Dark purple (best) to orange (50th): the best boxes stand out most; no pale yellow on a light image.
    colours = colormaps["plasma"]
    norm = Normalize(1, max(len(shown), 2))
    rank_colour = [colours(0.78 * norm(rank)) for rank in range(1, len(shown) + 1)]
    draw_boxes(image_axes, shown[::-1], rank_colour[::-1], width=1.6, alpha=0.9)  # the best end on top
    if len(gt):
        label = f"ground truth ({len(gt)})"
        draw_boxes(image_axes, gt, GROUND_TRUTH, width=1.4, style="--", alpha=0.85, label=label, zorder=3)
        legend(image_axes, "lower right")
    bar = ScalarMappable(norm, _truncated(colours, 0.78))
    colourbar = figure.colorbar(bar, ax=image_axes, fraction=0.04, pad=0.015)
    colourbar.set_label("rank (1 = best)", fontsize=SMALL_SIZE)
    colourbar.ax.tick_params(labelsize=SMALL_SIZE - 1)
    colourbar.ax.invert_yaxis()  # rank 1 at the top

    sizes = box_sizes(boxes)
    gt_sizes = box_sizes(gt)
    edges = size_bins(np.concatenate([sizes, gt_sizes]))
    hist_axes.hist(
        sizes, bins=edges, color="#aab4c3", edgecolor="#6b7890", label=f"all {len(boxes)} proposals"
    )
    hist_axes.hist(sizes[: len(shown)], bins=edges, color=colours(0.3), label=f"the top {len(shown)} (left)")
    if len(gt):
        hist_axes.hist(
            gt_sizes,
            bins=edges,
            histtype="step",
            color=GROUND_TRUTH,
            linewidth=2.2,
            label="ground-truth boxes",
        )
    # A log count: the top N are a few per bar beside hundreds, and would vanish on a linear axis.
    hist_axes.set_yscale("log")
    hist_axes.set_xscale("log")
    hist_axes.set_xlabel("size √(w·h), pixels of the original image (log scale)", fontsize=LABEL_SIZE)
    hist_axes.set_ylabel("boxes per bar (log scale)", fontsize=LABEL_SIZE)
    hist_axes.set_title("How many proposals there are of each size", fontsize=LABEL_SIZE)
    hist_axes.tick_params(labelsize=SMALL_SIZE)
    hist_axes.grid(True, which="major", linestyle=":", linewidth=0.6, alpha=0.6)
    hist_axes.legend(fontsize=SMALL_SIZE, loc="upper left", framealpha=0.92)
    median = float(np.median(sizes))
    hist_axes.text(
        0.99,
        0.98,
        f"median {median:.0f} px\nsmallest {sizes.min():.0f} px\nlargest {sizes.max():.0f} px",
        transform=hist_axes.transAxes,
        ha="right",
        va="top",
        fontsize=SMALL_SIZE,
        bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "#cccccc"},
    )
    top = hist_axes.get_ylim()[1]
    hist_axes.set_ylim(0.7, top * 4)  # room above the bars for the legend and the numbers
    heading = f"Region proposals of {title}" if title else "Region proposals"
    figure.suptitle(heading + (f" ({source})" if source else ""), fontsize=TITLE_SIZE)
    return save_png(figure, path)


def _truncated(colours: Any, upto: float) -> Any:
    """The part [0, ``upto``] of a colour map, as its own map (the colour bar of the ranks)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(colours(np.linspace(0.0, upto, 256)))


def proposals_picture(picked: Any, source: Any, path: Path, top_n: int = 50, source_name: str = "") -> Path:
    """Write the proposals picture of ``picked``'s image (:class:`~rcnn_cli.pictures.inputs.Picked`);
    ``source`` is a :data:`~rcnn_cli.proposals.sources.ProposalSource`."""
    from rcnn_cli.data import read_record

    rgb = read_record(picked.record)
    boxes = np.asarray(source(picked.record, rgb), dtype=np.float32).reshape(-1, 4)
    gt = picked.record.boxes if picked.has_ground_truth else None
    return draw_proposals(
        rgb, boxes, path, top_n=top_n, gt_boxes=gt, title=picked.record.image_id, source=source_name
    )
