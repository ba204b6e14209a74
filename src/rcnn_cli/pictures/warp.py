"""``rcnn show warp``: what R-CNN's network sees (Girshick et al. 2014, §2.1 and appendix A). Each region
is dilated so that ``p`` pixels of context surround it once warped, then stretched to S×S whatever its
shape; where the dilated box leaves the image, the mean pixel fills in.

Left, the image with the regions (solid) and their context boxes (dashed); right, the warped windows
as the CNN receives them (:func:`rcnn_cli.rcnn.warp.warp_regions`, the same call training and
detection make), with the box proper framed ``p`` pixels inside each window's edge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.pictures.figure import (
    GROUND_TRUTH,
    LABEL_SIZE,
    SMALL_SIZE,
    TITLE_SIZE,
    draw_boxes,
    new_figure,
    save_png,
    show_image,
)
from rcnn_cli.rcnn.warp import context_boxes, warp_regions

#: Proposals drawn, in the colours of the windows (ground-truth boxes are blue).
PROPOSAL = "#ff7f0e"


def warped_windows(rgb: np.ndarray, boxes: np.ndarray, size: int, padding: int) -> np.ndarray:
    """rgb uint8 [H, W, 3], boxes float [R, 4] -> the warped windows uint8 [R, size, size, 3], the mean
    pixel of the image outside it (the released code's fill: the ImageNet mean there; here the image's
    own, which reads the same in a picture)."""
    image = torch.tensor(rgb).permute(2, 0, 1).double()  # a copy: the decoded image may be read-only
    mean = image.mean(dim=(1, 2), keepdim=True)
    windows = warp_regions(image - mean, torch.tensor(boxes).double(), size, padding) + mean
    return windows.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


def warp_picture(
    picked: Any,
    boxes: np.ndarray,
    kinds: list[str],
    path: Path,
    size: int,
    padding: int,
) -> Path:
    """Write the picture of ``boxes`` float [R, 4] (original pixels) of ``picked``'s image; ``kinds[r]``
    names each box ("gt" or "proposal")."""
    from rcnn_cli.data import read_record

    rgb = read_record(picked.record)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        raise RcnnError(f"{picked.record.image_id}: no box to warp (no gt box and no proposal)")
    windows = warped_windows(rgb, boxes, size, padding)
    outer = context_boxes(torch.tensor(boxes).double(), size, padding).numpy()
    colours = [GROUND_TRUTH if kind == "gt" else PROPOSAL for kind in kinds]

    columns = min(4, len(boxes))
    rows = -(-len(boxes) // columns)
    height, width = rgb.shape[:2]
    figure = new_figure(16.0, max(6.0, 2.9 * rows + 1.2, 8.2 * height / width + 1.2))
    image_axes, right = figure.subfigures(1, 2, width_ratios=[1.25, 1.0])
    axes = image_axes.subplots()
    show_image(axes, rgb)
    draw_boxes(axes, boxes, colours, width=2.0)
    draw_boxes(axes, outer, colours, width=1.4, style="--")
    for r, (x1, y1, _x2, _y2) in enumerate(boxes):
        axes.text(
            x1 + 2,
            y1 + 2,
            str(r + 1),
            color="white",
            fontsize=SMALL_SIZE,
            va="top",
            bbox={"facecolor": colours[r], "edgecolor": "none", "pad": 1.5},
        )
    axes.set_title("Regions (solid) and their context boxes (dashed)", fontsize=LABEL_SIZE)
    grid = right.subplots(rows, columns, squeeze=False)
    for r, cell in enumerate(grid.flat):
        cell.set_axis_off()
        if r >= len(boxes):
            continue
        cell.imshow(windows[r], extent=(0, size, size, 0), interpolation="nearest")
        inner = [[padding, padding, size - padding, size - padding]]
        draw_boxes(cell, inner, colours[r], width=1.6)
        x1, y1, x2, y2 = boxes[r]
        cell.set_title(f"{r + 1}: {kinds[r]}, {x2 - x1:.0f}x{y2 - y1:.0f} px", fontsize=SMALL_SIZE)
    right.suptitle(
        f"What the CNN sees: each region warped to {size}x{size}, {padding} px of context",
        fontsize=LABEL_SIZE,
    )
    figure.suptitle(f"{picked.record.image_id}: R-CNN's warped regions", fontsize=TITLE_SIZE)
    return save_png(figure, path)
