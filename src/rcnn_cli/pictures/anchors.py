"""``rcnn show anchors``: Faster R-CNN's anchors (§3.1.1) and their training labels (§3.1.2).

Left, the k = |scales| × |ratios| anchors centred on one feature-map cell. Right, one image's anchors
as the RPN trains on them: positive (IoU ≥ 0.7 with a gt box, or a gt box's best anchor), negative
(IoU < 0.3), border-crossing ones ignored, then 256 sampled with at most half positive.

Everything comes from :mod:`rcnn_cli.rpn`: :func:`~rcnn_cli.rpn.anchors.anchors` over the backbone's
real feature-map size, and :func:`~rcnn_cli.rpn.anchor_targets.anchor_targets` for the labels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.pictures.figure import (
    BACKGROUND,
    FOREGROUND,
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
from rcnn_cli.pictures.network_view import NetworkView
from rcnn_cli.rpn.anchor_targets import AnchorTargetConfig, anchor_targets
from rcnn_cli.rpn.anchors import AnchorConfig, anchors


@dataclass(frozen=True)
class AnchorLayout:
    """One image's anchors (all in pixels of the scaled image).

    ``cell`` (i, j) and its k anchors ``cell_anchors`` Tensor[k, 4]; ``all_anchors`` Tensor[A, 4] with
    A = H'·W'·k; ``labels`` Tensor[A] after sampling (1, 0, -1) and ``unsampled`` Tensor[A] before it
    (the same labelling with a batch as large as A); ``inside`` Tensor[A] bool: within the image (the
    allowed border included), the only anchors that get labels; ``gt`` Tensor[G, 4].
    """

    view: NetworkView
    config: AnchorConfig
    targets: AnchorTargetConfig
    map_size: tuple[int, int]
    cell: tuple[int, int]
    cell_anchors: Tensor
    all_anchors: Tensor
    labels: Tensor
    unsampled: Tensor
    inside: Tensor
    gt: Tensor


def anchor_layout(
    view: NetworkView,
    config: AnchorConfig,
    image_size: tuple[int, int],
    gt_boxes: Tensor,
    at: tuple[float, float] | None = None,
    targets: AnchorTargetConfig = AnchorTargetConfig(),
    seed: int = 0,
) -> AnchorLayout:
    """The anchors of an image of ``image_size`` (h, w) (scaled) with gt ``gt_boxes`` Tensor[G, 4];
    ``at`` (x, y) picks the cell whose anchors are shown (default: the image's centre)."""
    height, width = image_size
    map_size = view.feature_size(height, width)
    grid = anchors(map_size, view.stride, config.scales, config.ratios)
    x, y = at if at is not None else (width / 2, height / 2)
    i = min(max(int(y // view.stride), 0), map_size[0] - 1)
    j = min(max(int(x // view.stride), 0), map_size[1] - 1)
    k = config.num_anchors
    first = (i * map_size[1] + j) * k  # cell-major, then anchor (rpn/anchors.py)
    gt = gt_boxes.float().reshape(-1, 4)
    generator = torch.Generator().manual_seed(seed)
    labels, _ = anchor_targets(grid, gt, image_size, targets, generator)
    everything = replace(targets, batch_size=grid.shape[0], positive_fraction=1.0)
    unsampled, _ = anchor_targets(grid, gt, image_size, everything)
    b = targets.allowed_border if targets.ignore_border else float("inf")
    inside = (grid[:, 0] >= -b) & (grid[:, 1] >= -b) & (grid[:, 2] <= width + b) & (grid[:, 3] <= height + b)
    cell = grid[first : first + k]
    return AnchorLayout(view, config, targets, map_size, (i, j), cell, grid, labels, unsampled, inside, gt)


def _shape_name(scale: float, ratio: float) -> str:
    """'128² 1:2' — the paper's names: ratio H/W = 0.5 is 1:2 (wide)."""
    if ratio == 1.0:
        shape = "1:1"
    elif ratio < 1.0:
        shape = f"1:{1 / ratio:g}"
    else:
        shape = f"{ratio:g}:1"
    return f"{scale:g}² {shape}"


def _cell_panel(axes, layout: AnchorLayout, image: np.ndarray) -> None:
    from matplotlib import colormaps

    show_image(axes, image)
    s = layout.view.stride
    i, j = layout.cell
    axes.add_patch(_cell_patch(j * s, i * s, s))
    scales, ratios = layout.config.scales, layout.config.ratios
    colours = colormaps["tab10"]
    styles = ("-", "--", ":", "-.")
    for t, box in enumerate(layout.cell_anchors.numpy()):
        a, r = divmod(t, len(ratios))  # scale-major within a cell
        w, h = box[2] - box[0], box[3] - box[1]
        draw_boxes(
            axes,
            box[None],
            colours(a % 10),
            width=2.2,
            style=styles[r % len(styles)],
            label=f"{_shape_name(scales[a], ratios[r])} → {w:.0f}×{h:.0f} px",
        )
    centre = ((j + 0.5) * s, (i + 0.5) * s)
    axes.plot(*centre, marker="+", color="white", markersize=12, markeredgewidth=2.0)
    axes.set_title(
        f"The k = {layout.config.num_anchors} anchors of cell ({i}, {j}), centred at "
        f"({centre[0]:g}, {centre[1]:g})\nscales (√area) × ratios H/W; colour = scale, line = ratio",
        fontsize=LABEL_SIZE,
    )
    # Room for the largest anchors, which may reach past the image: that is what the RPN sees too.
    boxes = layout.cell_anchors.numpy()
    pad = 0.03 * max(image.shape[:2])
    axes.set_xlim(
        min(0.0, float(boxes[:, 0].min())) - pad, max(image.shape[1], float(boxes[:, 2].max())) + pad
    )
    axes.set_ylim(
        max(image.shape[0], float(boxes[:, 3].max())) + pad, min(0.0, float(boxes[:, 1].min())) - pad
    )


def _cell_patch(x: float, y: float, size: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), size, size, facecolor="white", edgecolor="black", alpha=0.9, zorder=3)


def _labels_panel(axes, layout: AnchorLayout, image: np.ndarray) -> None:
    show_image(axes, image)
    boxes = layout.all_anchors.numpy()
    labels = layout.labels.numpy()
    unsampled = layout.unsampled.numpy()
    negatives, positives = boxes[labels == 0], boxes[labels == 1]
    draw_boxes(
        axes, negatives, BACKGROUND, width=1.0, alpha=0.55, label=f"sampled negative ({len(negatives)})"
    )
    draw_boxes(axes, positives, FOREGROUND, width=2.0, zorder=3, label=f"sampled positive ({len(positives)})")
    gt = layout.gt.numpy()
    draw_boxes(axes, gt, GROUND_TRUTH, width=2.0, style="--", zorder=4, label=f"ground truth ({len(gt)})")
    legend(axes, "upper right")
    t = layout.targets
    axes.set_title(
        f"One image's {t.batch_size} training anchors: positive IoU ≥ {t.positive_iou:g} "
        "or a gt box's best,\n"
        f"negative IoU < {t.negative_iou:g}; at most {t.positive_fraction:.0%} positive",
        fontsize=LABEL_SIZE,
    )
    height, width = layout.map_size
    k = layout.config.num_anchors
    inside = layout.inside.numpy()
    ignored = int((inside & (unsampled == -1)).sum())
    axes.set_xlabel(
        f"A = H'·W'·k = {height}·{width}·{k} = {len(boxes)} anchors, {int(inside.sum())} inside the image "
        f"(only those get labels)\nbefore sampling: {int((unsampled == 1).sum())} positive, "
        f"{int((unsampled == 0).sum())} negative, {ignored} in between (IoU in [{t.negative_iou:g}, "
        f"{t.positive_iou:g}): ignored)",
        fontsize=SMALL_SIZE,
    )


def draw_anchors(layout: AnchorLayout, image: np.ndarray, path: Path, title: str = "") -> Path:
    """Write the picture of ``layout``; ``image`` uint8 [h, w, 3] is the scaled image the anchors are in."""
    aspect = image.shape[0] / image.shape[1]
    figure = new_figure(16.0, max(6.5, 7.6 * aspect + 2.8))
    left, right = figure.subplots(1, 2)
    _cell_panel(left, layout, image)
    _labels_panel(right, layout, image)
    # The k anchors' legend under the picture, one column per scale (inside, it would hide anchors).
    handles, names = left.get_legend_handles_labels()
    figure.legend(
        handles,
        names,
        loc="outside lower left",
        ncols=len(layout.config.scales),
        fontsize=SMALL_SIZE,
        frameon=False,
        handlelength=2.6,
        title="the anchors on the left (scale² ratio H:W → width×height)",
        title_fontsize=SMALL_SIZE,
    )
    view = layout.view
    height, width = layout.map_size
    figure.suptitle(
        f"RPN anchors{' of ' + title if title else ''}: backbone {view.backbone}, stride {view.stride}, "
        f"image read at {image.shape[1]}×{image.shape[0]} px → {width}×{height} feature map",
        fontsize=TITLE_SIZE,
    )
    return save_png(figure, path)


def anchors_picture(
    picked: Any,
    path: Path,
    *,
    backbone: str = "small",
    model: Path | None = None,
    at: tuple[float, float] | None = None,
    seed: int = 0,
) -> Path:
    """Write the anchors picture of ``picked``'s image: ``model``'s anchors, stride and scale (a Faster
    R-CNN checkpoint), else ``backbone``'s defaults; ``at`` (x, y) in original pixels picks the cell."""
    from rcnn_cli.data import read_record

    if model is not None:
        view, config = _model_anchors(model)
    else:
        view, config = NetworkView.for_backbone(backbone), AnchorConfig.for_backbone(backbone)
    rgb = read_record(picked.record)
    image, im_scale = view.resize(rgb)
    gt = torch.from_numpy(picked.record.boxes) * im_scale
    where = None if at is None else (at[0] * im_scale, at[1] * im_scale)
    layout = anchor_layout(view, config, image.shape[:2], gt, where, seed=seed)
    return draw_anchors(layout, image, path, picked.record.image_id)


def _model_anchors(model: Path) -> tuple[NetworkView, AnchorConfig]:
    """A Faster R-CNN checkpoint's view and anchors; :class:`RcnnError` for a model without an RPN."""
    from rcnn_cli.errors import RcnnError
    from rcnn_cli.models import load_checkpoint

    _net, meta = load_checkpoint(model, "cpu")
    config = meta["config"]
    if config.rpn is None:
        raise RcnnError(
            f"{model}: a Fast R-CNN without an RPN has no anchors; leave out --model or give a "
            "Faster R-CNN (rcnn train --rpn)"
        )
    return NetworkView.for_model(config), config.rpn.anchors
