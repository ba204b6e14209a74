"""Faster R-CNN's approximate joint training (Ren et al. §3.2, "approximate joint training"), and the
RPN trained alone (step 1 and 3 of the 4-step alternating schedule).

Per image of the minibatch: the conv layers once; the RPN's loss on 256 sampled anchors; with the
detection head, the RPN's proposals (12000 → NMS → 2000, no gradient: the "approximate" of the name,
as the paper and its released code) ∪ the gt boxes are matched to the gt, R/N RoIs sampled as Fast
R-CNN does, and the multi-task loss taken on them. The two losses are summed and back-propagated
together, so the shared conv layers learn from both.

Normalization: the head's loss is divided by the minibatch's planned R (as :mod:`.step`), the RPN's by
each image's sampled anchors and by the N images, so that the minibatch's RPN loss is the mean of the
images' (the released code trains one image per minibatch). Everything random draws from the trainer's
generator, in a fixed order per image (anchors, then RoIs), so a resumed run goes on as the
uninterrupted one. Shapes: G gt boxes, P proposals, S sampled RoIs of one image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rcnn_cli.boxes import flip_boxes
from rcnn_cli.models.faster_rcnn import FasterRCNN
from rcnn_cli.models.losses import LossParts
from rcnn_cli.rpn.network import RPNLoss
from rcnn_cli.training import distributed
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.entries import ImageEntry, ImageSource
from rcnn_cli.training.metrics import LossSums
from rcnn_cli.training.minibatch import draw_color, draw_scale_and_flip, plan_minibatch
from rcnn_cli.training.photometric import ColorJitter
from rcnn_cli.training.sampling import ImageOrder, sample_rois
from rcnn_cli.training.step import IterationStep
from rcnn_cli.training.targets import TargetNormalization, encode_targets, match_proposals


@dataclass(frozen=True)
class JointSample:
    """One image of a joint minibatch: its record, the shorter side it is read at, whether it is
    mirrored, ``count``, the RoIs the detection head samples from its proposals, and its ``color``
    jitter (None: none)."""

    record: Any
    scale: int
    flip: bool
    count: int
    color: ColorJitter | None = None


def plan_joint_minibatch(
    entries: list[ImageEntry],
    order: ImageOrder,
    config: TrainConfig,
    scales: tuple[int, ...],
    generator: torch.Generator,
) -> list[JointSample]:
    """The next minibatch's images (the configured sampler's plan), each with a random scale and flip
    (:func:`rcnn_cli.training.minibatch.draw_scale_and_flip`)."""
    samples = []
    for index, count in plan_minibatch(order, config).images:
        scale, flip = draw_scale_and_flip(config, scales, generator)
        color = draw_color(config, generator)
        samples.append(JointSample(entries[index].record, scale, flip, count, color))
    return samples


@dataclass(frozen=True)
class JointOutput:
    """One image's forward pass: the RPN's loss, and the head's logits Tensor[S, K+1], deltas
    Tensor[S, 4(K+1)], labels u Tensor[S], normalized targets v Tensor[S, 4] and each RoI's IoU with
    its ground truth Tensor[S] (None for the RPN alone)."""

    rpn: RPNLoss
    logits: Tensor | None = None
    deltas: Tensor | None = None
    labels: Tensor | None = None
    targets: Tensor | None = None
    ious: Tensor | None = None


class _JointForward(nn.Module):
    """What DDP wraps: conv layers, RPN and (unless ``rpn_only``) the head on the sampled RoIs."""

    def __init__(
        self,
        model: FasterRCNN,
        config: TrainConfig,
        normalization: TargetNormalization,
        generator: torch.Generator,
        rpn_only: bool,
    ) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.normalization = normalization
        self.generator = generator
        self.rpn_only = rpn_only

    def forward(
        self, images: Tensor, gt_boxes: Tensor, gt_labels: Tensor, count: int, has_gt: bool
    ) -> JointOutput:
        """images Tensor[1, 3, H, W]; gt_boxes Tensor[G, 4] in its pixels, gt_labels Tensor[G] (1..K)."""
        cfg = self.config
        size = (int(images.shape[-2]), int(images.shape[-1]))
        features = self.model.features(images)
        output = self.model.rpn(features)
        rpn = self.model.rpn.loss(output, [gt_boxes], [size], cfg.rpn_targets, self.generator, lam=1.0)
        if self.rpn_only:
            return JointOutput(rpn)
        proposals = self.model.rpn.proposals(output, [size], cfg.rpn_proposals)[0][0]
        candidates = torch.cat([proposals, gt_boxes]) if gt_boxes.numel() else proposals
        matches = match_proposals(candidates.cpu(), gt_boxes.cpu(), gt_labels.cpu())
        sample = sample_rois(
            matches.max_iou, matches.gt_label, count, cfg.sampling, self.generator, has_gt=has_gt
        )
        boxes = candidates.cpu()[sample.index]
        targets = torch.zeros(boxes.shape[0], 4)
        fg = sample.labels > 0
        if fg.any():
            gt = gt_boxes.cpu()[matches.gt_index[sample.index[fg]]]
            targets[fg] = self.normalization.normalize(encode_targets(boxes[fg], gt), sample.labels[fg])
        device = images.device
        rois = torch.cat([torch.zeros(len(boxes), 1), boxes], dim=1).to(device)
        logits, deltas = self.model.head(features, rois)
        ious = matches.max_iou[sample.index]
        return JointOutput(rpn, logits, deltas, sample.labels.to(device), targets.to(device), ious)


class JointStep(IterationStep):
    """One iteration of joint training (or of the RPN alone, ``config.stage == "rpn"``)."""

    def __init__(
        self,
        model: FasterRCNN,
        config: TrainConfig,
        source: ImageSource,
        info: distributed.DistInfo,
        device: torch.device,
        normalization: TargetNormalization,
        generator: torch.Generator,
    ) -> None:
        self.normalization = normalization
        self.generator = generator
        super().__init__(model, config, source, info, device)

    @property
    def rpn_only(self) -> bool:
        return self.config.stage == "rpn"

    def forward_module(self) -> nn.Module:
        assert isinstance(self.model, FasterRCNN)
        return _JointForward(self.model, self.config, self.normalization, self.generator, self.rpn_only)

    def planned_rois(self, samples: list[Any]) -> int:
        return sum(s.count for s in samples)

    def _backward(
        self,
        sample: JointSample,
        total_rois: int,
        num_images: int,
        sums: LossSums,
        images: list[str],
        iteration: int,
    ) -> None:
        record = sample.record
        inputs, im_scale = self.source.get(record, sample.scale, sample.flip, sample.color)
        gt = torch.from_numpy(record.boxes).float()
        if sample.flip and gt.numel():
            gt = flip_boxes(gt, record.width)
        gt_boxes = (gt * im_scale).reshape(-1, 4).to(self.device)
        gt_labels = torch.from_numpy(record.labels).long().to(self.device)
        with torch.autocast("cuda", enabled=self.scaler is not None):
            out = self.forward(
                inputs[None].to(self.device), gt_boxes, gt_labels, sample.count, gt.numel() > 0
            )
        rpn_total = out.rpn.total.float() * (self.config.rpn_lam / num_images)
        parts: LossParts | None = None
        total = rpn_total
        if out.logits is not None:
            assert out.deltas is not None and out.labels is not None and out.targets is not None
            assert out.ious is not None
            parts = self.head_loss(
                out.logits, out.deltas, out.labels, out.targets, total_rois, iteration, out.ious
            )
            total = total + parts.total
        value = self.backward(total, images, iteration)
        sums.add_rpn(value, out.rpn, num_images)
        if parts is not None:
            assert out.labels is not None
            sums.add_head(parts, out.labels.cpu())
