"""What one training iteration reads: the minibatch plan of the configured sampler, then each image's
RoIs, labels u and normalized box targets v (paper §2.3), flipped with probability 0.5, with random
brightness, contrast and saturation when ``--color-jitter`` is set.

Every draw comes from the trainer's seeded generator, in a fixed order (scale, flip, colour, RoIs per image),
so a resumed run samples what the uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rcnn_cli.boxes import flip_boxes
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.entries import ImageEntry
from rcnn_cli.training.photometric import ColorJitter
from rcnn_cli.training.sampling import (
    ImageOrder,
    MinibatchPlan,
    hierarchical_sampling,
    region_wise_sampling,
    sample_rois,
)
from rcnn_cli.training.targets import TargetNormalization, encode_targets


@dataclass(frozen=True)
class ImageSample:
    """One image's share of a minibatch: S RoIs ``boxes`` Tensor[S, 4] in original pixels (mirrored
    when ``flip``), labels u Tensor[S] (0 = background), normalized targets v Tensor[S, 4] (zero for
    background), each RoI's best IoU with a ground-truth box ``ious`` Tensor[S] (the soft
    classification target of ``--cls-target iou``), the shorter side ``scale`` the image is read at
    and its ``color`` jitter (None: none)."""

    record: Any
    scale: int
    flip: bool
    boxes: Tensor
    labels: Tensor
    targets: Tensor
    ious: Tensor
    color: ColorJitter | None = None


def plan_minibatch(order: ImageOrder, config: TrainConfig) -> MinibatchPlan:
    """Which images and how many RoIs of each, by ``config.sampler`` (checked when the config was built)."""
    s = config.sampling
    if config.sampler == "region":
        return region_wise_sampling(order, s.rois_per_batch)
    return hierarchical_sampling(order, s.images_per_batch, s.rois_per_batch)


def draw_scale_and_flip(
    config: TrainConfig, scales: tuple[int, ...], generator: torch.Generator
) -> tuple[int, bool]:
    """One image's random shorter side (one of ``scales``) and mirroring (probability 0.5 when
    ``config.flip``), drawn in this order from ``generator``; Fast R-CNN's and the RPN's minibatches
    both draw them so, which keeps a resumed run on the same stream."""
    scale = scales[int(torch.randint(len(scales), (), generator=generator))] if len(scales) > 1 else scales[0]
    flip = bool(config.flip and torch.rand((), generator=generator).item() < 0.5)
    return scale, flip


def draw_color(config: TrainConfig, generator: torch.Generator) -> ColorJitter | None:
    """One image's photometric jitter (``config.color_jitter``), drawn right after its scale and flip;
    nothing is drawn when it is 0."""
    return ColorJitter.draw(config.color_jitter, generator)


def sample_image(
    entry: ImageEntry,
    count: int,
    config: TrainConfig,
    scales: tuple[int, ...],
    normalization: TargetNormalization,
    generator: torch.Generator,
) -> ImageSample:
    """``count`` RoIs of one image (fg fraction and IoU ranges of ``config.sampling``) at a random one
    of ``scales``, flipped with probability 0.5 when ``config.flip``."""
    g = generator
    scale, flip = draw_scale_and_flip(config, scales, g)
    color = draw_color(config, g)
    record = entry.record
    sample = sample_rois(
        entry.matches.max_iou, entry.matches.gt_label, count, config.sampling, g, has_gt=record.num_boxes > 0
    )
    boxes = entry.candidates[sample.index]
    gt = torch.from_numpy(record.boxes)
    if flip:
        boxes = flip_boxes(boxes, record.width)
        gt = flip_boxes(gt, record.width) if gt.numel() else gt
    targets = torch.zeros(boxes.shape[0], 4)
    fg = sample.labels > 0
    if fg.any():
        raw = encode_targets(boxes[fg], gt[entry.matches.gt_index[sample.index[fg]]])
        targets[fg] = normalization.normalize(raw, sample.labels[fg])
    ious = entry.matches.max_iou[sample.index]
    return ImageSample(record, scale, flip, boxes, sample.labels, targets, ious, color)


def sample_minibatch(
    entries: list[ImageEntry],
    order: ImageOrder,
    config: TrainConfig,
    scales: tuple[int, ...],
    normalization: TargetNormalization,
    generator: torch.Generator,
) -> list[ImageSample]:
    """The images of the next minibatch with their RoIs; an image left without RoIs is dropped."""
    plan = plan_minibatch(order, config)
    samples = [
        sample_image(entries[i], count, config, scales, normalization, generator) for i, count in plan.images
    ]
    return [s for s in samples if s.boxes.shape[0] > 0]
