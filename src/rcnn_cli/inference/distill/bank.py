"""The RoI bank: what the teacher does on the calibration RoIs, collected once before distilling.

For each calibration image, the RoI-pooled features of up to ``rois_per_image`` proposals (half of
them the proposals the teacher scores as most object-like, the rest drawn at random, because mAP is
decided on the former while the latter are most of what the head sees), with the teacher's class
logits and box deltas. Features are pooled once: the backbone and the pooling do not change, so each
distillation step costs only the fc layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.distill.config import DistillConfig
from rcnn_cli.models.heads import FastRCNNHead

if TYPE_CHECKING:
    from rcnn_cli.inference.detect import Detector

#: A teacher probability above this marks a RoI as object-like for the bank's "hot" half.
HOT_SCORE = 0.01


@dataclass
class RoiBank:
    """The teacher on the calibration RoIs. n RoIs, D = C·B pooled features, K+1 classes.

    pooled: Tensor[n, D]; logits: Tensor[n, K+1]; deltas: Tensor[n, K+1, 4] (raw, as the checkpoint's
    ``bbox_pred`` outputs them); images: how many images the RoIs came from.
    """

    pooled: Tensor
    logits: Tensor
    deltas: Tensor
    images: int

    def __len__(self) -> int:
        return len(self.pooled)

    def batch(self, index: Tensor | slice, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """(pooled, logits, deltas) of the RoIs ``index``, on ``device``."""
        return tuple(t[index].to(device) for t in (self.pooled, self.logits, self.deltas))  # type: ignore[return-value]

    def delta_scale(self) -> Tensor:
        """σ: Tensor[K+1, 4], the p_c-weighted standard deviation of the teacher's class-c deltas."""
        p = self.logits.double().softmax(1)
        w = p / p.sum(0, keepdim=True).clamp_min(1e-12)  # [n, K+1]
        d = self.deltas.double()
        mean = (w[:, :, None] * d).sum(0)
        var = (w[:, :, None] * (d - mean).square()).sum(0)
        return var.sqrt().clamp_min(1e-4).float()


def head_outputs(head: FastRCNNHead, pooled: Tensor) -> tuple[Tensor, Tensor]:
    """pooled: Tensor[R, D] -> (logits [R, K+1], deltas [R, K+1, 4]) of the test-time head (no
    dropout, whatever the head's mode), in the bank's layout."""
    with eval_mode(head):
        logits, deltas = head.forward_pooled(pooled)
    return logits, deltas.view(len(pooled), logits.shape[1], 4)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode inside (no dropout), its own mode again after."""
    training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(training)


def collect_rois(
    teacher: Detector,
    images: Iterable[tuple[np.ndarray, np.ndarray]],
    config: DistillConfig = DistillConfig(),
    log: Callable[[str], None] = lambda _m: None,
) -> RoiBank:
    """Pool the calibration RoIs of ``images`` ((rgb uint8 [H, W, 3], proposals [R, 4]) pairs) with the
    teacher's preprocessing, and record the teacher's outputs on them (module docstring)."""
    model = teacher.model
    generator = torch.Generator().manual_seed(config.seed)
    per_image = config.rois_per_image
    pooled, logits, deltas = [], [], []
    count = 0
    with torch.inference_mode():
        for rgb, proposals in images:
            height, width = rgb.shape[:2]
            boxes = teacher.clean_proposals(proposals, height, width)
            if len(boxes) == 0:
                continue
            image, rois = teacher.network_inputs(rgb, boxes)
            features = model.head.pool_rois(model.features(image), rois)
            if count == 0:  # the bank's size is known after the first image: keep it within budget
                row_bytes = features.shape[1] * features.element_size()
                fit = int(config.max_bank_mib * 2**20 / max(row_bytes * config.images, 1))
                if fit < per_image:
                    per_image = max(fit, 8)
                    log(f"distill: {per_image} RoIs per image (bank within {config.max_bank_mib} MiB)")
            out_logits, out_deltas = head_outputs(model.head, features)
            chosen = choose_rois(out_logits, per_image, generator)
            pooled.append(features[chosen].float().cpu())
            logits.append(out_logits[chosen].float().cpu())
            deltas.append(out_deltas[chosen].float().cpu())
            count += 1
    if count == 0:
        raise RcnnError("distillation found no image with proposals to learn from")
    return RoiBank(torch.cat(pooled), torch.cat(logits), torch.cat(deltas), count)


def choose_rois(logits: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """Indices of up to ``count`` RoIs: the most object-like (fg probability > HOT_SCORE), at most half
    of ``count``, then a random draw from the others."""
    fg = logits.softmax(1)[:, 1:].amax(1).cpu()
    order = fg.argsort(descending=True)
    top = order[: count // 2]
    hot = top[fg[top] > HOT_SCORE]
    rest = order[len(hot) :]
    drawn = rest[torch.randperm(len(rest), generator=generator)[: count - len(hot)]]
    return torch.cat([hot, drawn]).to(logits.device)
