"""Anchors (Faster R-CNN §3.1.1): k reference boxes centred on every cell of the backbone's feature map.

Conventions (the RPN head's outputs use the same ones, see :mod:`rcnn_cli.rpn.head`):

- **Centres.** Cell (i, j) of an H'×W' feature map at stride s covers the image pixels
  ``[j·s, (j+1)·s) × [i·s, (i+1)·s)``; its anchors are centred at ``((j + 0.5)·s, (i + 0.5)·s)``, the middle
  of that patch in continuous pixel coordinates (docs/ARCHITECTURE.md). torchvision's AnchorGenerator
  centres its anchors on the cell's corner ``(j·s, i·s)`` and the released Caffe code on
  ``(j·s + (s−1)/2, …)`` in inclusive integer pixels; the half-cell shift here is the continuous form of
  the latter and keeps the anchor grid symmetric in the image.
- **Shape.** An anchor of scale s (area s²) and ratio r = H/W has ``W = s/√r`` and ``H = s·√r``
  (r = 0.5, "1:2", is wide; r = 2, "2:1", is tall). Sizes are not rounded.
- **Order.** Cell-major, then anchor: index ``a = (i·W' + j)·k + t`` with ``t = scale_index·|ratios| +
  ratio_index`` (scale-major within a cell). A = H'·W'·k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from rcnn_cli.errors import RcnnError

#: The paper's anchors (§3.1.1): areas 128², 256², 512² for backbones at stride 16 on ~600-px images.
PAPER_SCALES: tuple[float, ...] = (128.0, 256.0, 512.0)
#: Ratios H/W of 1:2, 1:1, 2:1.
PAPER_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)

#: Per-backbone scales. The ``small`` backbone reads ~400-px images (shorter side, 2/3 of the paper's
#: 600) at stride 8: a 512² anchor is larger than the image, crosses its border everywhere and is never
#: trained, and 256² fits only near the centre; its objects are smaller too, and stride 8 places small
#: anchors densely enough to cover them. So it gets the paper's scales / 4: 32², 64², 128².
BACKBONE_SCALES: dict[str, tuple[float, ...]] = {
    "small": (32.0, 64.0, 128.0),
    "small_context": (32.0, 64.0, 128.0),
}


def _positive_numbers(values: Sequence[float], option: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise RcnnError(f"{option}: expected numbers, got {values!r}") from None
    if not numbers:
        raise RcnnError(f"{option}: give at least one value")
    bad = [v for v in numbers if not (math.isfinite(v) and v > 0)]
    if bad:
        raise RcnnError(f"{option}: every value must be a positive number, got {bad[0]:g}")
    if len(set(numbers)) != len(numbers):
        raise RcnnError(f"{option}: values repeat in {', '.join(f'{v:g}' for v in numbers)}")
    return numbers


@dataclass(frozen=True)
class AnchorConfig:
    """The anchor shapes: ``scales`` (sqrt of the area, pixels) × ``ratios`` (H/W); k = their product."""

    scales: tuple[float, ...] = PAPER_SCALES
    ratios: tuple[float, ...] = PAPER_RATIOS

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", _positive_numbers(self.scales, "--anchor-scales"))
        object.__setattr__(self, "ratios", _positive_numbers(self.ratios, "--anchor-ratios"))

    @property
    def num_anchors(self) -> int:
        """k, the anchors per feature-map cell."""
        return len(self.scales) * len(self.ratios)

    @classmethod
    def for_backbone(cls, backbone: str) -> AnchorConfig:
        """The default for a backbone by name: the paper's, or :data:`BACKBONE_SCALES`'s entry."""
        return cls(scales=BACKBONE_SCALES.get(backbone, PAPER_SCALES))


def cell_anchors(scales: Sequence[float], ratios: Sequence[float]) -> Tensor:
    """The k anchors of one cell centred at (0, 0): ``Tensor[k, 4]`` float32, scale-major."""
    s = torch.tensor([float(v) for v in scales], dtype=torch.float64)[:, None]
    r = torch.tensor([float(v) for v in ratios], dtype=torch.float64)[None, :]
    w = (s / r.sqrt()).reshape(-1)
    h = (s * r.sqrt()).reshape(-1)
    return (torch.stack((-w, -h, w, h), dim=1) / 2).to(torch.float32)


def anchors(
    feature_size: tuple[int, int],
    stride: float,
    scales: Sequence[float] = PAPER_SCALES,
    ratios: Sequence[float] = PAPER_RATIOS,
    device: torch.device | str | None = None,
) -> Tensor:
    """All anchors of an H'×W' feature map: ``Tensor[H'·W'·k, 4]`` float32 xyxy image pixels.

    ``feature_size`` is (H', W'); ``stride`` the backbone's, in image pixels per cell. Order and centres
    as in the module docstring: row a = (i·W' + j)·k + t is anchor t of cell (i, j).
    """
    # Not int(): under torch.export the sizes are symbols, and int() would fix them to the traced size.
    height, width = feature_size
    base = cell_anchors(scales, ratios).to(device)
    ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) * float(stride)
    xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) * float(stride)
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack((cx, cy, cx, cy), dim=-1).reshape(-1, 1, 4)  # Tensor[H'·W', 1, 4], row-major
    return (centres + base[None]).reshape(-1, 4)


def auto_anchor_scales(
    gt_box_sizes: Tensor, count: int = 3, labels: Tensor | None = None
) -> tuple[tuple[float, ...], str]:
    """Anchor scales fitted to training boxes, and a one-line reason.

    ``gt_box_sizes``: ``Tensor[G, 2]`` (width, height) of the training set's boxes, pixels of the scaled
    image; ``labels``: their classes ``Tensor[G]``. The scales are the ``count`` quantiles of sqrt(area)
    at the centres of equal-mass bins (``(q + 0.5) / count``), so each scale stands for an equal share of
    the boxes; with ``labels`` of several classes, each *class* weighs the same, so that a rare class
    (BCCD's platelets beside 11 times as many red cells) gets an anchor of its size. Rounded to whole
    pixels and kept distinct.
    """
    if count < 1:
        raise RcnnError(f"--anchor-scales auto: count must be >= 1, got {count}")
    sizes = torch.as_tensor(gt_box_sizes, dtype=torch.float64).reshape(-1, 2)
    keep = (sizes > 0).all(dim=1)
    sizes = sizes[keep]
    if sizes.shape[0] == 0:
        raise RcnnError("--anchor-scales auto: the training set has no boxes of positive size")
    side = sizes.prod(dim=1).sqrt()
    levels = (torch.arange(count, dtype=torch.float64) + 0.5) / count
    classes = torch.as_tensor(labels).reshape(-1)[keep] if labels is not None else None
    balanced = classes is not None and classes.unique().numel() > 1
    if balanced:
        assert classes is not None
        picked = _class_balanced_quantiles(side, classes, levels)
    else:
        picked = torch.quantile(side, levels)
    scales: list[float] = []
    for value in picked.round().clamp(min=1.0).tolist():
        if value not in scales:
            scales.append(value)
    names = ", ".join(f"{100 * q:.0f}%" for q in levels.tolist())
    weighting = ", each class weighing the same" if balanced else ""
    reason = (
        f"anchor scales {', '.join(f'{v:g}' for v in scales)}: the {names} quantiles of sqrt(area) of "
        f"{side.numel()} training boxes{weighting} (from {side.min().item():.0f} to "
        f"{side.max().item():.0f} px)"
    )
    return tuple(scales), reason


def _class_balanced_quantiles(side: Tensor, classes: Tensor, levels: Tensor) -> Tensor:
    """Quantiles of ``side`` Tensor[G] at ``levels`` when each box weighs 1 / (its class's box count):
    the sorted values are placed at the midpoints of their cumulative weight and interpolated."""
    _, inverse, counts = classes.unique(return_inverse=True, return_counts=True)
    weight = 1.0 / counts[inverse].to(torch.float64)
    order = side.argsort()
    values, weight = side[order], weight[order]
    position = (weight.cumsum(0) - weight / 2) / weight.sum()
    index = torch.searchsorted(position, levels).clamp(1, values.numel() - 1)
    lo, hi = position[index - 1], position[index]
    t = ((levels - lo) / (hi - lo).clamp(min=1e-12)).clamp(0.0, 1.0)
    return values[index - 1] + t * (values[index] - values[index - 1])


def anchor_coverage(
    gt_boxes: list[Tensor],
    image_sizes: list[tuple[int, int]],
    stride: float,
    config: AnchorConfig,
    iou: float = 0.5,
) -> float:
    """The share of gt boxes that some anchor inside its image overlaps at IoU >= ``iou``.

    ``gt_boxes``: per image ``Tensor[G_i, 4]`` in pixels of the scaled image whose (height, width) is in
    ``image_sizes``; the feature map is taken as ceil(size / stride) cells. A low share means the RPN
    starts from anchors far from the objects (the best-anchor rule still makes every gt box a positive,
    at a low IoU), and ``--anchor-scales auto`` fits them.
    """
    from rcnn_cli.boxes import box_iou

    hit = total = 0
    for boxes, (height, width) in zip(gt_boxes, image_sizes, strict=True):
        if boxes.numel() == 0:
            continue
        grid = anchors(
            (math.ceil(height / stride), math.ceil(width / stride)), stride, config.scales, config.ratios
        )
        inside = (grid[:, 0] >= 0) & (grid[:, 1] >= 0) & (grid[:, 2] <= width) & (grid[:, 3] <= height)
        total += boxes.shape[0]
        if inside.any():
            hit += int((box_iou(boxes.float(), grid[inside]).max(dim=1).values >= iou).sum())
    return hit / total if total else 1.0
