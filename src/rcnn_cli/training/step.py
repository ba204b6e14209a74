"""One SGD iteration on a sampled minibatch (paper §2.3): for each image, the conv layers once (or its
cached features), the head on its RoIs, the multi-task loss and the backward pass. Gradients
accumulate over the images, so memory holds one image at a time; then one optimizer step.

Each image's loss is divided by the whole minibatch's R, so the accumulated gradient is that of the
minibatch's loss. With DDP, gradients are all-reduced once, on the last image.

From a features folder extracted at several scales (SPPnet's multi-scale option), each RoI is pooled
from the map of the scale its area assigns it (SPPnet §4.2), not from one scale drawn per image.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import Tensor, nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.fast_rcnn import FastRCNN
from rcnn_cli.models.losses import LossParts
from rcnn_cli.rcnn.scale_assignment import pool_at_assigned_scales
from rcnn_cli.training import distributed
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.entries import ImageSource
from rcnn_cli.training.metrics import LossSums
from rcnn_cli.training.minibatch import ImageSample
from rcnn_cli.training.solver import box_loss_weight, make_optimizer


class _Forward(nn.Module):
    """What DDP wraps: the model from images, or only its head from cached features."""

    def __init__(self, model: FastRCNN, from_features: bool) -> None:
        super().__init__()
        self.model = model
        self.from_features = from_features

    def forward(self, inputs: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        if self.from_features:
            return self.model.head(inputs, rois)
        return self.model(inputs, rois)


class _PyramidForward(nn.Module):
    """What DDP wraps for a multi-scale features folder: each RoI pooled from its scale's cached map,
    then fc6, fc7 and the head (the pooling has no parameters and the conv layers are frozen)."""

    def __init__(self, model: FastRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, maps: list[Tensor], im_scales: list[float], boxes: Tensor) -> tuple[Tensor, Tensor]:
        """maps: S Tensor[1, C, h_s, w_s]; im_scales: their S factors; boxes: Tensor[R, 4] in original
        pixels -> (logits Tensor[R, K+1], deltas Tensor[R, 4·(K+1)])."""
        head = self.model.head
        return head.forward_pooled(pool_at_assigned_scales(head.pool_rois, maps, im_scales, boxes))


class IterationStep:
    """Forward, backward and optimizer step of one minibatch; owns the (DDP-wrapped) forward module,
    the optimizer and, with ``--amp`` on CUDA, the gradient scaler."""

    def __init__(
        self,
        model: FastRCNN,
        config: TrainConfig,
        source: ImageSource,
        info: distributed.DistInfo,
        device: torch.device,
    ) -> None:
        self.model = model
        self.config = config
        self.source = source
        self.info = info
        self.device = device
        # --cls-only leaves bbox_pred out of the graph: DDP must be told to expect unused parameters.
        self.forward = distributed.wrap(self.forward_module(), info, device, find_unused=config.cls_only)
        self.optimizer = make_optimizer(model, config)
        self.scaler = torch.amp.GradScaler("cuda") if config.amp and device.type == "cuda" else None

    def forward_module(self) -> nn.Module:
        """What DDP wraps: it must compute every trained parameter's contribution to the loss."""
        if getattr(self.source, "uses_pyramid", False):
            return _PyramidForward(self.model)
        return _Forward(self.model, self.source.uses_features)

    def __call__(self, samples: list[Any], iteration: int) -> LossSums:
        """Train on ``samples``; ``iteration`` (0-based, before this step) names a divergence."""
        self.optimizer.zero_grad(set_to_none=True)
        total_rois = self.planned_rois(samples)
        images = [s.record.image_id for s in samples]
        sums = LossSums()
        for n, sample in enumerate(samples):
            last = n == len(samples) - 1
            sync = contextlib.nullcontext() if last or not self.info.enabled else self.forward.no_sync()
            with sync:
                self._backward(sample, total_rois, len(samples), sums, images, iteration)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return sums

    def planned_rois(self, samples: list[Any]) -> int:
        """R, the minibatch's RoIs: every image's loss is divided by it."""
        return sum(s.boxes.shape[0] for s in samples)

    def _backward(
        self,
        sample: ImageSample,
        total_rois: int,
        num_images: int,
        sums: LossSums,
        images: list[str],
        iteration: int,
    ) -> None:
        """Loss and backward pass of one image, added to ``sums``."""
        arguments = self.forward_arguments(sample)
        labels, targets = sample.labels.to(self.device), sample.targets.to(self.device)
        with torch.autocast("cuda", enabled=self.scaler is not None):
            logits, deltas = self.forward(*arguments)
        parts = self.head_loss(logits, deltas, labels, targets, total_rois, iteration, sample.ious)
        value = self.backward(parts.total, images, iteration)
        sums.add(value, parts, sample.labels)

    def forward_arguments(self, sample: ImageSample) -> tuple[Any, ...]:
        """The wrapped forward's arguments for one image, on the device: (the image or its cached map
        Tensor[1, C, h, w] at ``sample.scale``, rois Tensor[S, 5] in its pixels); from a multi-scale
        features folder (the maps of every scale, their im_scales, boxes Tensor[S, 4] in original
        pixels), where ``sample.scale``, the image's random scale, does not apply."""
        if getattr(self.source, "uses_pyramid", False):
            pyramid = self.source.pyramid(sample.record, sample.flip)
            maps = [fmap[None].to(self.device) for fmap, _ in pyramid]
            return maps, [im_scale for _, im_scale in pyramid], sample.boxes.to(self.device)
        inputs, im_scale = self.source.get(sample.record, sample.scale, sample.flip, sample.color)
        rois = torch.cat([torch.zeros(len(sample.boxes), 1), sample.boxes * im_scale], dim=1)
        return inputs[None].to(self.device), rois.to(self.device)

    def head_loss(
        self,
        logits: Tensor,
        deltas: Tensor,
        labels: Tensor,
        targets: Tensor,
        total_rois: int,
        iteration: int,
        ious: Tensor,
    ) -> LossParts:
        """The multi-task loss of one image's RoIs, divided by the minibatch's R, with the box loss's λ
        of ``iteration`` (:func:`box_loss_weight`); ``ious`` Tensor[S], each RoI's IoU with its ground
        truth, are the classification targets of foreground RoIs with ``--cls-target iou``."""
        cfg = self.config
        return self.model.head.loss(
            logits.float(),
            deltas.float(),
            labels,
            targets,
            lam=box_loss_weight(cfg, iteration),
            cls_only=cfg.cls_only,
            normalizer=total_rois,
            quality=ious.to(logits.device) if cfg.cls_target == "iou" else None,
        )

    def backward(self, total: Tensor, images: list[str], iteration: int) -> float:
        """Backward pass of one image's loss ``total``, refused when it is not finite or explodes (the
        NaN guard, naming the minibatch's images); returns it as a float."""
        value = total.item()
        if not math.isfinite(value) or value > self.config.explode_threshold:
            raise RcnnError(
                f"training diverged at iteration {iteration + 1}: loss {value:.4g} on images "
                f"{', '.join(images)} "
                "(lower --lr, add --warmup, or check these images' boxes)"
            )
        if self.scaler is not None:
            self.scaler.scale(total).backward()
        else:
            total.backward()
        return value
