"""R-CNN's fine-tuning iteration (Girshick et al. 2014, §2.3 "Domain-specific fine-tuning"): every
sampled window is cropped with context, warped to S×S and run through the conv layers on its own
(R conv passes per minibatch, where Fast R-CNN shares N); the softmax over K+1 classes is trained on
them (R-CNN's fine-tuning has no box loss: its boxes come from the ridge regressors afterwards).

The minibatch is the sampler's (``--sampler region`` draws each window from another image, as the
paper's window data layer; the default N = 2 images); :class:`WarpSource` reads the images at their
original size, where the proposals are.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from rcnn_cli.models.preprocess import normalize_image
from rcnn_cli.models.rcnn import window_rois
from rcnn_cli.rcnn.warp import warp_regions
from rcnn_cli.training.minibatch import ImageSample
from rcnn_cli.training.photometric import ColorJitter
from rcnn_cli.training.step import IterationStep


class WarpSource:
    """The normalized image at its original size (im_scale 1): R-CNN warps regions from it.
    ``scales`` are the model's, drawn by the sampler but not used to resize."""

    uses_features = False

    def __init__(self, scales: tuple[int, ...], pixel_mean: Any, pixel_std: Any) -> None:
        self.scales = scales
        self.pixel_mean, self.pixel_std = pixel_mean, pixel_std

    def get(
        self, record: Any, scale: int, flip: bool, color: ColorJitter | None = None
    ) -> tuple[Tensor, float]:
        """-> (Tensor[3, H, W] normalized, mirrored when ``flip``, jittered by ``color``; 1.0)."""
        from rcnn_cli.data import read_record

        rgb = read_record(record)
        rgb = color.apply(rgb) if color is not None else rgb
        image = normalize_image(rgb, self.pixel_mean, self.pixel_std, flip=flip)
        return image, 1.0


class WarpedRegionStep(IterationStep):
    """:class:`IterationStep` whose network input is the warped windows, one conv pass each."""

    def forward_arguments(self, sample: ImageSample) -> tuple[Any, ...]:
        """(windows Tensor[S, 3, size, size], rois Tensor[S, 5]): each window is an image of its own,
        and its RoI the whole window."""
        cfg = self.model.config
        image, _ = self.source.get(sample.record, sample.scale, sample.flip, sample.color)
        size = cfg.region_size
        windows = warp_regions(image, sample.boxes, size, cfg.region_padding)
        return windows.to(self.device), window_rois(len(windows), size, self.device)
