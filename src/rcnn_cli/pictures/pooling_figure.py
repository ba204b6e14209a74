"""Draws a :class:`~rcnn_cli.pictures.pooling.PoolingLayout`: six panels, from the RoI on the image to
the bins each pooling uses on the feature map, and the 2×5 → 2×2 question answered.

Feature-map panels are in cells (see :mod:`.pooling`); bins are drawn as rectangles inset a little, in
two alternating colours, so that two bins sharing a row or column show as two outlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.errors import RcnnError
from rcnn_cli.ops.pool_geometry import PoolBins, roi_pool_window
from rcnn_cli.pictures.figure import LABEL_SIZE, SMALL_SIZE, TITLE_SIZE, new_figure, save_png, show_image
from rcnn_cli.pictures.inputs import Picked
from rcnn_cli.pictures.pooling import EXAMPLE_BINS, EXAMPLE_MAP, PoolingLayout, describe_bins, pooling_layout
from rcnn_cli.pictures.pooling_features import default_box, model_features, pick_channel, stand_in_features

EXACT = "#00e5ff"  # the RoI as given, unrounded
ROUNDED = "#ffd400"  # the window RoI pooling rounds it to
BIN_COLOURS = ("#ffffff", "#ff8c1a")  # alternate bins
MAXIMUM = "#ff2020"
SAMPLE = "#ffffff"


def _crop(layout: PoolingLayout, margin: int = 2) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1): the cells around the RoI and its rounded window, ``margin`` more."""
    height, width = layout.map_size
    window = layout.bins.window
    x1, y1, x2, y2 = layout.roi_cells
    row0 = max(min(window.start_h, int(np.floor(y1))) - margin, 0)
    col0 = max(min(window.start_w, int(np.floor(x1))) - margin, 0)
    row1 = min(max(window.start_h + window.height, int(np.ceil(y2))) + margin, height)
    col1 = min(max(window.start_w + window.width, int(np.ceil(x2))) + margin, width)
    return row0, row1, col0, col1


def _feature_axes(axes: Any, layout: PoolingLayout, title: str, ticks: bool = True) -> None:
    """The cropped feature map as a heat map, in cell coordinates, y down."""
    row0, row1, col0, col1 = _crop(layout)
    values = layout.features.numpy()
    axes.imshow(
        values,
        cmap="viridis",
        extent=(0, values.shape[1], values.shape[0], 0),
        interpolation="nearest",
        vmin=float(values.min()),
        vmax=float(values.max()),
    )
    axes.set_xlim(col0, col1)
    axes.set_ylim(row1, row0)
    axes.set_title(title, fontsize=LABEL_SIZE)
    if ticks:
        span = max(row1 - row0, col1 - col0)
        step = 1 if span <= 12 else (2 if span <= 24 else 5)
        axes.set_xticks(range(col0 - col0 % step, col1 + 1, step))
        axes.set_yticks(range(row0 - row0 % step, row1 + 1, step))
        axes.tick_params(labelsize=SMALL_SIZE - 1.5)
        axes.set_xlabel("feature-map column", fontsize=SMALL_SIZE)
        axes.set_ylabel("row", fontsize=SMALL_SIZE)
    else:
        axes.set_xticks([])
        axes.set_yticks([])
    # The cell grid, faint: the pooling works in whole cells.
    axes.set_xticks(np.arange(col0, col1 + 1), minor=True)
    axes.set_yticks(np.arange(row0, row1 + 1), minor=True)
    axes.grid(which="minor", color="black", linewidth=0.4, alpha=0.35)
    axes.tick_params(which="minor", length=0)


def _rectangle(axes: Any, x0: float, y0: float, x1: float, y1: float, **style: Any) -> None:
    from matplotlib.patches import Rectangle

    axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, **style))


def _draw_bins(axes: Any, bins: PoolBins, inset: float, width: float = 1.6) -> None:
    """Every non-empty bin as its cells' rectangle, inset by ``inset`` cells, colours alternating."""
    for i, (h0, h1) in enumerate(bins.rows.tolist()):
        for j, (w0, w1) in enumerate(bins.cols.tolist()):
            if h1 > h0 and w1 > w0:
                colour = BIN_COLOURS[(i + j) % 2]
                _rectangle(
                    axes, w0 + inset, h0 + inset, w1 - inset, h1 - inset, edgecolor=colour, linewidth=width
                )


def _draw_roi(axes: Any, layout: PoolingLayout, scale: float = 1.0, label: bool = False) -> None:
    """The exact RoI (dashed) and RoI pooling's rounded window (solid), in cells × ``scale``."""
    x1, y1, x2, y2 = (v * scale for v in layout.roi_cells)
    w = layout.bins.window
    _rectangle(
        axes,
        x1,
        y1,
        x2,
        y2,
        edgecolor=EXACT,
        linewidth=2.2,
        linestyle="--",
        label="exact RoI" if label else None,
    )
    _rectangle(
        axes,
        w.start_w * scale,
        w.start_h * scale,
        (w.start_w + w.width) * scale,
        (w.start_h + w.height) * scale,
        edgecolor=ROUNDED,
        linewidth=2.2,
        label="rounded window (RoI pooling)" if label else None,
    )


def _image_panel(axes: Any, layout: PoolingLayout, image: np.ndarray) -> None:
    s = layout.view.stride
    height, width = image.shape[:2]
    show_image(axes, image)
    axes.set_title(f"The RoI on the image the network reads ({width}×{height} px)", fontsize=LABEL_SIZE)
    x1, y1, x2, y2 = layout.box
    _rectangle(axes, x1, y1, x2, y2, edgecolor=EXACT, linewidth=2.0)
    row0, row1, col0, col1 = _crop(layout)
    _rectangle(axes, col0 * s, row0 * s, col1 * s, row1 * s, edgecolor="white", linewidth=1.2, linestyle=":")
    axes.text(  # inside the zoomed frame: above it, the label would run into the title at the top edge
        col0 * s + 2,
        row0 * s + 2,
        "zoomed next →",
        color="white",
        fontsize=SMALL_SIZE,
        va="top",
        bbox={"facecolor": "black", "alpha": 0.5, "pad": 1.5, "edgecolor": "none"},
    )


def _quantization_panel(axes: Any, layout: PoolingLayout, image: np.ndarray) -> None:
    """The zoomed image with the stride grid: exact RoI against the window RoI pooling rounds it to."""
    s = layout.view.stride
    row0, row1, col0, col1 = _crop(layout)
    show_image(axes, image)
    axes.set_xlim(col0 * s, col1 * s)
    axes.set_ylim(row1 * s, row0 * s)
    for c in range(col0, col1 + 1):
        axes.axvline(c * s, color="white", linewidth=0.6, alpha=0.55)
    for r in range(row0, row1 + 1):
        axes.axhline(r * s, color="white", linewidth=0.6, alpha=0.55)
    _draw_roi(axes, layout, scale=s, label=True)
    axes.legend(loc="lower right", fontsize=SMALL_SIZE, framealpha=0.92)
    x1, y1, x2, y2 = layout.box
    w = layout.bins.window
    left, top = w.start_w * s - x1, w.start_h * s - y1
    right, bottom = (w.start_w + w.width) * s - x2, (w.start_h + w.height) * s - y2
    axes.set_title(
        f"Quantization: corners rounded to {s}-px cells, both corner cells inside\n"
        f"edges move {left:+.1f}, {top:+.1f}, {right:+.1f}, {bottom:+.1f} px (left, top, right, bottom)",
        fontsize=LABEL_SIZE,
    )
    axes.set_xlabel("image pixels (the grid: one feature-map cell each)", fontsize=SMALL_SIZE)


def _roi_pool_panel(axes: Any, layout: PoolingLayout) -> None:
    size = layout.bins.rows.shape[0], layout.bins.cols.shape[0]
    _feature_axes(
        axes,
        layout,
        f"RoI max pooling (Fast R-CNN): {size[0]}×{size[1]} bins (white, orange alternate)\n"
        "● = the cell each bin's max is taken from (the kernel's argmax)",
    )
    _draw_roi(axes, layout)
    _draw_bins(axes, layout.bins, inset=0.1)
    width = layout.map_size[1]
    picked = layout.argmax[layout.argmax >= 0].numpy()
    axes.scatter(
        picked % width + 0.5,
        picked // width + 0.5,
        s=34,
        c=MAXIMUM,
        edgecolors="white",
        linewidths=0.9,
        zorder=4,
    )


def _spp_panel(panel: Any, layout: PoolingLayout) -> None:
    """SPPnet's levels, one small map each (``panel`` is a subfigure)."""
    levels = list(layout.spp)[:4]
    total = sum(level * level for level in layout.spp)
    names = " + ".join(f"{lv}²" for lv in layout.spp)
    panel.suptitle(f"SPPnet's pyramid (same bin rule): {names} = {total} bins", fontsize=LABEL_SIZE)
    grid = np.atleast_1d(panel.subplots(2, 2)).reshape(-1)
    for axes, level in zip(grid, levels, strict=False):
        _feature_axes(axes, layout, f"{level}×{level}", ticks=False)
        _draw_roi(axes, layout)
        _draw_bins(axes, layout.spp[level], inset=0.12, width=1.4)
        axes.title.set_fontsize(SMALL_SIZE + 0.5)
    for axes in grid[len(levels) :]:
        axes.set_axis_off()


def _align_panel(axes: Any, layout: PoolingLayout) -> None:
    samples = layout.align
    points = samples.ys.shape[1] * samples.xs.shape[1]
    _feature_axes(
        axes,
        layout,
        f"RoIAlign (Mask R-CNN): no rounding; {points} bilinear\nsamples (○) averaged in each bin",
    )
    # The kernel reads cell (i, j)'s value at the point (i, j); in these cell coordinates that value sits
    # at the cell's centre (i + ½, j + ½), so its points are drawn half a cell further right and down.
    # With aligned=True the RoI was shifted by −½ first, and the bins coincide with the exact RoI.
    shift = 0.5
    start_y, start_x = samples.start
    bin_h, bin_w = samples.bin_size
    rows, cols = samples.ys.shape[0], samples.xs.shape[0]
    for i in range(rows + 1):
        y = start_y + shift + i * bin_h
        axes.plot([start_x + shift, start_x + shift + cols * bin_w], [y, y], color="white", linewidth=1.0)
    for j in range(cols + 1):
        x = start_x + shift + j * bin_w
        axes.plot([x, x], [start_y + shift, start_y + shift + rows * bin_h], color="white", linewidth=1.0)
    ys = samples.ys.reshape(-1).numpy() + shift
    xs = samples.xs.reshape(-1).numpy() + shift
    grid_x, grid_y = np.meshgrid(xs, ys)
    axes.scatter(grid_x, grid_y, s=9, facecolors="none", edgecolors=SAMPLE, linewidths=0.8, zorder=4)
    x1, y1, x2, y2 = layout.roi_cells
    _rectangle(axes, x1, y1, x2, y2, edgecolor=EXACT, linewidth=2.0, linestyle="--")


def _example_panel(axes: Any, bins: PoolBins) -> None:
    """The 2×5 map with its four bins, each cell numbered, and the answer under it."""
    height, width = EXAMPLE_MAP
    values = np.arange(height * width).reshape(height, width)
    axes.imshow(np.zeros_like(values), cmap="Greys", vmin=0, vmax=1, extent=(0, width, height, 0))
    for i in range(height):
        for j in range(width):
            axes.text(j + 0.5, i + 0.5, f"{values[i, j]}", ha="center", va="center", fontsize=LABEL_SIZE)
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for k, (i, j) in enumerate((i, j) for i in range(EXAMPLE_BINS) for j in range(EXAMPLE_BINS)):
        h0, h1, w0, w1 = bins.cells(i, j)
        inset = 0.06 + 0.07 * (j % 2)
        _rectangle(
            axes,
            w0 + inset,
            h0 + inset,
            w1 - inset,
            h1 - inset,
            edgecolor=colours[k],
            linewidth=2.6,
            label=f"bin ({i},{j})",
        )
    axes.set_xlim(-0.05, width + 0.05)
    axes.set_ylim(height + 0.05, -0.05)
    axes.set_xticks(np.arange(width) + 0.5, [f"col {j}" for j in range(width)], fontsize=SMALL_SIZE - 1)
    axes.set_yticks(np.arange(height) + 0.5, [f"row {i}" for i in range(height)], fontsize=SMALL_SIZE - 1)
    axes.set_aspect("equal")
    axes.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=4, fontsize=SMALL_SIZE - 0.5, frameon=False
    )
    bin_w = width / EXAMPLE_BINS
    axes.set_title(
        f"Q: how does a {height}×{width} map split into {EXAMPLE_BINS}×{EXAMPLE_BINS} bins?\n"
        f"bin width {width}/{EXAMPLE_BINS} = {bin_w:g}: columns [⌊0⌋, ⌈{bin_w:g}⌉) and "
        f"[⌊{bin_w:g}⌋, ⌈{width:g}⌉)",
        fontsize=LABEL_SIZE,
    )
    _wrapped(axes, "A: " + describe_bins(bins), y=-0.42)


def _wrapped(axes: Any, text: str, y: float, width: int = 62) -> None:
    import textwrap

    axes.text(
        0.5,
        y,
        "\n".join(textwrap.wrap(text, width)),
        transform=axes.transAxes,
        ha="center",
        va="top",
        fontsize=SMALL_SIZE,
    )


def draw_pooling(layout: PoolingLayout, image: np.ndarray, path: Path, title: str = "") -> Path:
    """Write the picture of ``layout``; ``image`` uint8 [h, w, 3] is the scaled image the RoI lives in."""
    figure = new_figure(17.5, 12.0)
    panels = figure.subfigures(2, 3, wspace=0.02, hspace=0.03).reshape(-1)
    _image_panel(panels[0].subplots(), layout, image)
    _quantization_panel(panels[1].subplots(), layout, image)
    _roi_pool_panel(panels[2].subplots(), layout)
    _spp_panel(panels[3], layout)
    _align_panel(panels[4].subplots(), layout)
    _example_panel(panels[5].subplots(), layout.example)
    view = layout.view
    window = roi_pool_window(layout.box, 1.0 / view.stride)
    height, width = layout.map_size
    figure.suptitle(
        f"RoI pooling{' of ' + title if title else ''}: backbone {view.backbone}, stride {view.stride} → "
        f"{width}×{height} feature map ({layout.feature_name}); the RoI covers "
        f"{window.width}×{window.height} cells",
        fontsize=TITLE_SIZE,
    )
    return save_png(figure, path)


def pooling_picture(
    picked: Picked,
    path: Path,
    *,
    box: Sequence[float] | None = None,
    backbone: str = "small",
    model: Path | None = None,
    channel: int | None = None,
    device: Any = "cpu",
) -> Path:
    """Write the pooling picture of one RoI of ``picked``'s image: ``box`` (x1, y1, x2, y2) in original
    pixels, by default a gt box of a size that shows the bins well; pooled from ``model``'s conv features
    (the ``channel`` most active in the RoI unless given) or from the stand-in map on ``backbone``'s grid.
    The pooling settings (output size, pyramid, RoIAlign samples) are the model config's."""
    from rcnn_cli.data import read_record

    if box is not None and not (box[2] > box[0] and box[3] > box[1]):
        raise RcnnError(f"--box {','.join(f'{v:g}' for v in box)}: need x1 < x2 and y1 < y2 (X1,Y1,X2,Y2)")
    rgb = read_record(picked.record)
    source = model_features(rgb, model, device) if model is not None else stand_in_features(rgb, backbone)
    view, config = source.view, source.config
    height, width = source.image.shape[:2]
    if box is None:
        scaled = default_box(
            picked.record.boxes * source.im_scale, width, height, view.stride, config.output_size
        )
    else:
        scaled = np.asarray(box, dtype=np.float32) * source.im_scale
    shown = pick_channel(source.features, scaled, view.stride, channel)
    name = source.name if source.features.shape[0] == 1 else f"{source.name}, channel {shown}"
    layout = pooling_layout(
        view,
        scaled.tolist(),
        source.features[shown],
        name,
        output_size=config.output_size,
        levels=config.levels,
        sampling_ratio=config.sampling_ratio,
    )
    return draw_pooling(layout, source.image, path, picked.record.image_id)
