"""``rcnn show rois``: the RoIs one minibatch trains on (Fast R-CNN §2.3, "Mini-batch sampling").

Left, Fast R-CNN's hierarchical sampling: N images (2), R/N RoIs (64) from each, so the R RoIs share N
conv passes. Right, R-CNN's and SPPnet's region-wise sampling: each of the R RoIs from another image, R
conv passes. In both, 25% of the RoIs are foreground (IoU ≥ 0.5 with a gt box) and the rest background
(IoU in [0.1, 0.5)).

The sampling is training's own code: candidates = proposals ∪ gt boxes matched by
:func:`rcnn_cli.training.entries.prepare_entries`, the plans of :func:`hierarchical_sampling` and
:func:`region_wise_sampling`, and :func:`sample_rois` for each image, drawn from one seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.errors import RcnnError
from rcnn_cli.pictures.figure import (
    BACKGROUND,
    FOREGROUND,
    GROUND_TRUTH,
    LABEL_SIZE,
    SMALL_SIZE,
    TITLE_SIZE,
    draw_boxes,
    new_figure,
    save_png,
    show_image,
)
from rcnn_cli.training.entries import ImageEntry, prepare_entries
from rcnn_cli.training.sampler_config import SamplerConfig
from rcnn_cli.training.sampling import ImageOrder, hierarchical_sampling, region_wise_sampling, sample_rois

#: (record, rgb uint8 [H, W, 3]) -> proposals float32 [P, 4], best first: a ProposalSource.
Proposals = Callable[[Any, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class SampledImage:
    """One image's share of a minibatch: ``rois`` Tensor[S, 4] original pixels, ``labels`` Tensor[S]
    (0 = background, else the class), and the gt boxes Tensor[G, 4] they were matched to."""

    record: Any
    rgb: np.ndarray
    rois: Tensor
    labels: Tensor
    gt: Tensor

    @property
    def num_fg(self) -> int:
        return int((self.labels > 0).sum())


@dataclass(frozen=True, eq=False)
class Minibatches:
    """The two ways of sampling the same dataset: the hierarchical minibatch's images (the chosen image
    first) and the first ``len(region_wise)`` images of the region-wise one, one RoI each."""

    config: SamplerConfig
    hierarchical: list[SampledImage]
    region_wise: list[SampledImage]


def _ordered(chosen: int, planned: Sequence[tuple[int, int]], wanted: int) -> list[tuple[int, int]]:
    """The plan's (image, count) pairs with ``chosen`` first (the picture is of that image), then the
    plan's other images in its order, ``wanted`` in all; counts are the plan's."""
    count = planned[0][1]
    others: list[int] = []
    for index, _ in planned:
        if index != chosen and index not in others:
            others.append(index)
    return [(chosen, count)] + [(i, count) for i in others[: wanted - 1]]


def sample_minibatches(
    records: Sequence[Any],
    chosen: int,
    proposals: Proposals,
    read: Callable[[Any], np.ndarray],
    config: SamplerConfig = SamplerConfig(),
    thumbnails: int = 8,
    seed: int = 0,
) -> Minibatches:
    """Sample one hierarchical and one region-wise minibatch of ``records`` (with ground truth), both
    holding ``records[chosen]``; only the images shown are read and proposed for (``thumbnails`` of the
    region-wise minibatch's R)."""
    generator = torch.Generator().manual_seed(seed)
    order = ImageOrder(len(records), seed)
    plan = hierarchical_sampling(order, config.images_per_batch, config.rois_per_batch)
    hierarchical = _ordered(chosen, plan.images, config.images_per_batch)
    plan = region_wise_sampling(ImageOrder(len(records), seed + 1), config.rois_per_batch)
    region = _ordered(chosen, plan.images, min(thumbnails, config.rois_per_batch))

    cache: dict[int, tuple[np.ndarray, ImageEntry]] = {}

    def entry(index: int) -> tuple[np.ndarray, ImageEntry]:
        if index not in cache:
            record = records[index]
            rgb = read(record)
            boxes = torch.from_numpy(np.asarray(proposals(record, rgb), dtype=np.float32).reshape(-1, 4))
            cache[index] = rgb, prepare_entries([record], {record.image_id: boxes})[0]
        return cache[index]

    def sample(index: int, count: int) -> SampledImage:
        rgb, e = entry(index)
        has_gt = e.record.num_boxes > 0
        drawn = sample_rois(e.matches.max_iou, e.matches.gt_label, count, config, generator, has_gt=has_gt)
        gt = torch.from_numpy(e.record.boxes)
        return SampledImage(e.record, rgb, e.candidates[drawn.index], drawn.labels, gt)

    return Minibatches(
        config,
        [sample(i, count) for i, count in hierarchical],
        [sample(i, count) for i, count in region],
    )


def _draw_sample(axes: Any, item: SampledImage, title: str, thin: bool = False) -> None:
    show_image(axes, item.rgb)
    axes.set_title(title, fontsize=SMALL_SIZE if thin else LABEL_SIZE)
    fg = (item.labels > 0).numpy()
    rois = item.rois.numpy()
    draw_boxes(axes, item.gt.numpy(), GROUND_TRUTH, width=1.0 if thin else 1.3, style="--", alpha=0.8)
    draw_boxes(axes, rois[~fg], BACKGROUND, width=1.6 if thin else 1.2, alpha=0.85)
    draw_boxes(axes, rois[fg], FOREGROUND, width=2.6 if thin else 2.0, zorder=3)
    if thin:
        axes.set_xticks([])
        axes.set_yticks([])


def _legend(figure: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=FOREGROUND, linewidth=3, label="foreground RoI (IoU ≥ 0.5 with a gt box)"),
        Line2D([], [], color=BACKGROUND, linewidth=2, label="background RoI (IoU in [0.1, 0.5))"),
        Line2D([], [], color=GROUND_TRUTH, linewidth=2, linestyle="--", label="ground-truth box"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=LABEL_SIZE, frameon=False)


def draw_rois(batches: Minibatches, path: Path) -> Path:
    """Write the picture of ``batches``: hierarchical minibatch on the left, region-wise on the right."""
    config = batches.config
    if not batches.hierarchical:
        raise RcnnError("no images to sample RoIs from")
    shown = batches.region_wise
    first = batches.hierarchical[0].rgb
    aspect = first.shape[0] / first.shape[1]
    rows = len(batches.hierarchical)
    figure = new_figure(15.5, max(6.0, 6.6 * aspect * rows + 2.2))
    left, right = figure.subfigures(1, 2, wspace=0.03)

    per_image = config.rois_per_batch // config.images_per_batch
    left.suptitle(
        f"Fast R-CNN, hierarchical sampling: N = {config.images_per_batch} images × R/N = {per_image} RoIs\n"
        f"R = {config.rois_per_batch} RoIs share {config.images_per_batch} conv passes",
        fontsize=LABEL_SIZE + 1,
    )
    for axes, item in zip(np.atleast_1d(left.subplots(rows, 1)), batches.hierarchical, strict=True):
        title = f"{item.record.image_id}: {item.num_fg} fg + {len(item.labels) - item.num_fg} bg RoIs"
        _draw_sample(axes, item, title)

    columns = 2
    grid_rows = -(-len(shown) // columns)
    right.suptitle(
        f"R-CNN / SPPnet, region-wise sampling: R = {config.rois_per_batch} RoIs from "
        f"{config.rois_per_batch} images,\none each: {config.rois_per_batch} conv passes "
        f"(the first {len(shown)} shown)",
        fontsize=LABEL_SIZE + 1,
    )
    cells = np.atleast_1d(right.subplots(grid_rows, columns)).reshape(-1)
    for axes, item in zip(cells, shown, strict=False):
        kind = "fg" if item.num_fg else ("bg" if len(item.labels) else "no")
        _draw_sample(axes, item, f"{item.record.image_id}: 1 {kind} RoI", thin=True)
    for axes in cells[len(shown) :]:
        axes.set_axis_off()
    _legend(figure)
    figure.suptitle(
        f"One minibatch of RoIs: {config.fg_fraction:.0%} foreground, IoU ≥ {config.fg_threshold:g} → fg, "
        f"[{config.bg_threshold_lo:g}, {config.bg_threshold_hi:g}) → bg",
        fontsize=TITLE_SIZE,
    )
    return save_png(figure, path)


def rois_picture(
    picked: Any,
    proposals: Proposals,
    path: Path,
    config: SamplerConfig = SamplerConfig(),
    thumbnails: int = 8,
    seed: int = 0,
) -> Path:
    """Write the RoI sampling picture of ``picked``'s image and its dataset (which must have ground
    truth: foreground and background are defined by it)."""
    from rcnn_cli.data import read_record

    record = picked.record
    if not picked.has_ground_truth or not any(r.num_boxes for r in picked.dataset.records):
        raise RcnnError(
            f"{record.path}: RoIs are foreground or background by their IoU with ground-truth boxes; "
            "give an annotated dataset: --dataset VOC_FOLDER --image-id ID"
        )
    records = picked.dataset.records
    chosen = next(i for i, r in enumerate(records) if r is record)
    batches = sample_minibatches(records, chosen, proposals, read_record, config, thumbnails, seed)
    return draw_rois(batches, path)
