"""Which RoIs a minibatch trains on (Fast R-CNN §2.3 "Mini-batch sampling"; SPPnet/R-CNN for contrast).

``hierarchical_sampling``: N images, R/N RoIs from each, so the R RoIs share N conv passes (paper: N = 2,
R = 128, about 64x faster than one image per RoI). ``region_wise_sampling``: each of the R RoIs from a
different image (R-CNN / SPPnet), R conv passes. Within an image, :func:`sample_rois` takes a fraction
``fg_fraction`` (25%) of foreground RoIs (IoU ≥ 0.5 with a gt box, label = its class) and the rest
background (IoU in [lo, 0.5), label 0); the gt boxes themselves join the candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rcnn_cli.training.sampler_config import SamplerConfig


@dataclass(frozen=True)
class RoiSample:
    """Indices into the image's candidates Tensor[S] and their labels Tensor[S] (0 = background)."""

    index: Tensor
    labels: Tensor

    @property
    def num_fg(self) -> int:
        return int((self.labels > 0).sum())


def _pick(candidates: Tensor, count: int, generator: torch.Generator) -> Tensor:
    if count >= candidates.numel():
        return candidates
    order = torch.randperm(candidates.numel(), generator=generator)[:count]
    return candidates[order]


def sample_rois(
    max_iou: Tensor,
    gt_label: Tensor,
    num_rois: int,
    config: SamplerConfig,
    generator: torch.Generator,
    has_gt: bool = True,
) -> RoiSample:
    """Sample ``num_rois`` of one image's P candidates (``max_iou``, ``gt_label``: Tensor[P], see Matches).

    fg: up to round(fg_fraction · num_rois) with IoU ≥ fg_threshold (stochastic rounding, so that one RoI
    per image — region-wise sampling — is fg with probability fg_fraction); bg: the rest from IoU in
    [lo, hi). Like the original, a minibatch is not padded when an image has too few candidates.
    An image without objects (``has_gt=False``) trains as background only, from all its candidates.
    """
    fg_wanted = config.fg_fraction * num_rois
    fg_count = math.floor(fg_wanted)
    if torch.rand((), generator=generator).item() < fg_wanted - fg_count:
        fg_count += 1
    fg_candidates = torch.nonzero(max_iou >= config.fg_threshold).flatten()
    fg = _pick(fg_candidates, fg_count, generator)
    if has_gt:
        bg_mask = (max_iou >= config.bg_threshold_lo) & (max_iou < config.bg_threshold_hi)
    else:
        bg_mask = torch.ones_like(max_iou, dtype=torch.bool)
    bg = _pick(torch.nonzero(bg_mask).flatten(), num_rois - fg.numel(), generator)
    index = torch.cat([fg, bg])
    labels = torch.cat([gt_label[fg], torch.zeros(bg.numel(), dtype=torch.int64)])
    return RoiSample(index, labels)


class ImageOrder:
    """An endless stream of image indices: a fresh random permutation each epoch (seeded, resumable).

    With P processes each rank takes every P-th index of the shared permutation, so ranks train on
    different images in the same step.
    """

    def __init__(self, num_images: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.num_images = num_images
        self.rank = rank
        self.world_size = world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self._perm = torch.empty(0, dtype=torch.int64)
        self._pos = 0

    def _refill(self) -> None:
        perm = torch.randperm(self.num_images, generator=self.generator)
        self._perm = perm[self.rank :: self.world_size] if self.num_images >= self.world_size else perm
        self._pos = 0
        self.epoch += 1

    def take(self, count: int) -> list[int]:
        out: list[int] = []
        while len(out) < count:
            if self._pos >= self._perm.numel():
                self._refill()
            out.append(int(self._perm[self._pos]))
            self._pos += 1
        return out

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "perm": self._perm.clone(),
            "pos": self._pos,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self._perm = state["perm"].clone()
        self._pos = int(state["pos"])


@dataclass(frozen=True)
class MinibatchPlan:
    """Which images a minibatch reads and how many RoIs to sample from each: [(image index, count)]."""

    images: tuple[tuple[int, int], ...]

    @property
    def num_rois(self) -> int:
        return sum(count for _, count in self.images)


def hierarchical_sampling(order: ImageOrder, images_per_batch: int, rois_per_batch: int) -> MinibatchPlan:
    """Fast R-CNN: sample N images, then R/N RoIs from each (the RoIs share the N conv passes)."""
    per_image = rois_per_batch // images_per_batch
    return MinibatchPlan(tuple((i, per_image) for i in order.take(images_per_batch)))


def region_wise_sampling(order: ImageOrder, rois_per_batch: int) -> MinibatchPlan:
    """R-CNN / SPPnet: each of the R RoIs comes from a different image (R conv passes per minibatch)."""
    return MinibatchPlan(tuple((i, 1) for i in order.take(rois_per_batch)))
