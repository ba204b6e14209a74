"""The proposal layer (Faster R-CNN §3.1, §3.3): turn the RPN's outputs into a few hundred boxes.

For each image: apply the predicted deltas to the anchors (the dw, dh log-ratios clamped at
log(1000/16), as detectron and torchvision do, by :class:`rcnn_cli.boxes.BoxCoder`), clip the boxes to
the image, drop those narrower or lower than ``min_size``, keep the ``pre_nms_top_n`` best by score,
suppress by NMS at IoU 0.7, and keep the ``post_nms_top_n`` best of what is left. The paper's numbers:
12000 / 2000 when training, 6000 / 300 at test time. Shapes: N images, A anchors per image, P_i
proposals of image i.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rcnn_cli.boxes import clip_boxes, remove_small_boxes
from rcnn_cli.ops.nms import nms
from rcnn_cli.rpn.loss import RPN_BOX_CODER
from rcnn_cli.rpn.settings import ProposalLayerConfig

__all__ = ["ProposalLayerConfig", "propose_boxes"]


def _best_first(logits: Tensor, count: int) -> Tensor:
    """Indices of the ``count`` largest of ``logits`` Tensor[A], by decreasing value, equal values by
    index: what a stable descending sort's first ``count`` are. topk finds the cut-off first, so only
    the few thousand at or above it are sorted, not all A (4x less time at A = 30k, count = 6000)."""
    if logits.numel() <= count:
        return logits.sort(descending=True, stable=True).indices
    cutoff = logits.topk(count, sorted=False).values.min()
    candidates = torch.nonzero(logits >= cutoff).flatten()  # ascending index: the stable sort keeps ties
    order = logits[candidates].sort(descending=True, stable=True).indices[:count]
    return candidates[order]


def _propose_one(
    anchors: Tensor, logits: Tensor, deltas: Tensor, image_size: tuple[int, int], config: ProposalLayerConfig
) -> tuple[Tensor, Tensor]:
    height, width = image_size
    boxes = RPN_BOX_CODER.decode(deltas.to(anchors.dtype), anchors)  # Tensor[A, 4]
    boxes = clip_boxes(boxes, float(height), float(width))
    keep = remove_small_boxes(boxes, config.min_size)
    keep = keep[(boxes[keep, 2] > boxes[keep, 0]) & (boxes[keep, 3] > boxes[keep, 1])]
    boxes, logits = boxes[keep], logits[keep]
    # Sort by the logit, which does not saturate as its sigmoid does; NMS's stable sort keeps this order.
    order = _best_first(logits, config.pre_nms_top_n)
    boxes, scores = boxes[order], torch.sigmoid(logits[order])
    kept = nms(boxes, scores, config.nms_iou)[: config.post_nms_top_n]
    return boxes[kept], scores[kept]


@torch.no_grad()
def propose_boxes(
    anchors: Tensor,
    objectness: Tensor,
    deltas: Tensor,
    image_sizes: Sequence[tuple[int, int]],
    config: ProposalLayerConfig | None = None,
) -> list[tuple[Tensor, Tensor]]:
    """Proposals of each image, best first.

    Args:
        anchors: ``Tensor[A, 4]``, the same for every image (:func:`rcnn_cli.rpn.anchors.anchors`).
        objectness: ``Tensor[N, A]`` logits; deltas: ``Tensor[N, A, 4]`` (:class:`rcnn_cli.rpn.head.RPNHead`).
        image_sizes: N (height, width) pairs, the sizes of the scaled images before any padding.
        config: the test-time numbers by default; :meth:`ProposalLayerConfig.for_training` for training.

    Returns:
        N pairs (boxes ``Tensor[P_i, 4]`` float32 xyxy, scores ``Tensor[P_i]`` = sigmoid(objectness)),
        by decreasing score (equal logits by anchor index). No gradient flows through them, as in the
        paper's approximate joint training.
    """
    config = config or ProposalLayerConfig()
    if (
        objectness.dim() != 2
        or deltas.shape != (*objectness.shape, 4)
        or objectness.shape[1] != anchors.shape[0]
    ):
        raise ValueError(
            f"propose_boxes: need objectness [N, A], deltas [N, A, 4], anchors [A, 4]; got "
            f"{tuple(objectness.shape)}, {tuple(deltas.shape)}, {tuple(anchors.shape)}"
        )
    if len(image_sizes) != objectness.shape[0]:
        raise ValueError(f"propose_boxes: {len(image_sizes)} image sizes for {objectness.shape[0]} images")
    return [
        _propose_one(anchors, objectness[i], deltas[i], image_sizes[i], config)
        for i in range(objectness.shape[0])
    ]
