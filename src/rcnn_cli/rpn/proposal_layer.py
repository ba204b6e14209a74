"""The proposal layer (Faster R-CNN §3.1, §3.3): turn the RPN's outputs into a few hundred boxes.

For each image: apply the predicted deltas to the anchors (the dw, dh log-ratios clamped at
log(1000/16), as detectron and torchvision do, by :class:`rcnn_cli.boxes.BoxCoder`), clip the boxes to
the image, drop those narrower or lower than ``min_size``, keep the ``pre_nms_top_n`` best by score,
suppress by NMS at IoU 0.7, and keep the ``post_nms_top_n`` best of what is left. The paper's numbers:
12000 / 2000 when training, 6000 / 300 at test time. Shapes: N images, A anchors per image, P_i
proposals of image i.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from rcnn_cli.boxes import clip_boxes, remove_small_boxes
from rcnn_cli.errors import RcnnError
from rcnn_cli.ops.nms import nms
from rcnn_cli.rpn.loss import RPN_BOX_CODER


@dataclass(frozen=True)
class ProposalLayerConfig:
    """How many proposals survive, and the NMS between them. The defaults are the test-time ones.

    ``min_size``: pixels of the image the anchors live in (the scaled image); the released code's 16
    is a size in the original image, scaled with it. 0 keeps every box of positive width and height.
    """

    pre_nms_top_n: int = 6000
    post_nms_top_n: int = 300
    nms_iou: float = 0.7
    min_size: float = 16.0

    def __post_init__(self) -> None:
        for option, value in (
            ("--rpn-pre-nms-top-n", self.pre_nms_top_n),
            ("--rpn-post-nms-top-n", self.post_nms_top_n),
        ):
            if int(value) != value or value < 1:
                raise RcnnError(f"{option}: must be a positive integer, got {value}")
        if self.post_nms_top_n > self.pre_nms_top_n:
            raise RcnnError(
                f"--rpn-post-nms-top-n: {self.post_nms_top_n} is more than --rpn-pre-nms-top-n "
                f"{self.pre_nms_top_n}"
            )
        if not 0.0 < self.nms_iou <= 1.0:
            raise RcnnError(f"--rpn-nms-iou: must be in (0, 1], got {self.nms_iou:g}")
        if not (math.isfinite(self.min_size) and self.min_size >= 0):
            raise RcnnError(f"--rpn-min-size: must be >= 0 pixels, got {self.min_size:g}")

    @classmethod
    def for_training(cls) -> ProposalLayerConfig:
        """12000 boxes before NMS, 2000 after (§3.3)."""
        return cls(pre_nms_top_n=12000, post_nms_top_n=2000)

    @classmethod
    def for_testing(cls) -> ProposalLayerConfig:
        """6000 boxes before NMS, 300 after (§4.1)."""
        return cls(pre_nms_top_n=6000, post_nms_top_n=300)


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
    order = logits.sort(descending=True, stable=True).indices[: config.pre_nms_top_n]
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
