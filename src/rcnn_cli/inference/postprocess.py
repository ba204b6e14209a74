"""From the network's raw outputs to final detections (Fast R-CNN §3 "Fast R-CNN detection").

For each RoI r the network gives class logits [K+1] and class-specific box deltas [4(K+1)]. Test time:

1. p = softmax(logits); the background column (0) is dropped;
2. every RoI gets one refined box per class: decode(deltas for class k, proposal r), clipped to the image;
3. (RoI, class) pairs with p_k > score_threshold (0.05) are kept;
4. non-maximum suppression per class at IoU 0.3 (``batched_nms``: boxes of different classes never
   suppress each other);
5. the ``max_detections`` (100) highest scores over all classes are kept;
6. with ``box_voting`` > 0 (Gidaris & Komodakis, ICCV 2015, §5), each kept box is replaced by the
   score-weighted mean of the boxes of its class from step 3 that overlap it at IoU >= ``box_voting``
   (itself included): the boxes NMS took out still vote on where the object is.

Shape shorthand: R RoIs of one image, K classes without background, D detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.heads import FastRCNNHead


@dataclass(frozen=True)
class PostprocessConfig:
    """The paper's test-time defaults."""

    score_threshold: float = 0.05
    nms_threshold: float = 0.3
    max_detections: int = 100
    box_voting: float = 0.0  # the IoU of the voters; 0: off (the paper's)

    def __post_init__(self) -> None:
        # ``not a <= x`` rather than ``x < a``: NaN fails every comparison and must be refused too.
        if not 0.0 <= self.score_threshold < 1.0:
            raise RcnnError(f"--score-threshold {self.score_threshold}: must be in [0, 1)")
        if not 0.0 <= self.nms_threshold <= 1.0:
            raise RcnnError(f"--nms {self.nms_threshold}: must be in [0, 1]")
        if not 0.0 <= self.box_voting <= 1.0:
            raise RcnnError(f"--box-voting {self.box_voting}: must be in [0, 1]")
        if self.max_detections < 1:
            raise RcnnError(f"--max-detections {self.max_detections}: must be >= 1")


@dataclass(frozen=True)
class ImageDetections:
    """Detections of one image in original pixels: ``boxes`` float [D, 4] xyxy, ``scores`` [D],
    ``labels`` int64 [D] in 1..K, sorted by decreasing score."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.scores.numel())


def select_detections(scores: Tensor, boxes: Tensor, config: PostprocessConfig) -> ImageDetections:
    """Threshold, per-class NMS and top-k over ``scores`` [R, K] and ``boxes`` [R, K, 4]."""
    from rcnn_cli.ops import batched_nms

    R, K = scores.shape
    labels = torch.arange(1, K + 1, device=scores.device).expand(R, K)
    keep = scores > config.score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    # A box clipped to nothing cannot be a detection (and would only confuse NMS).
    nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores, labels = boxes[nonempty], scores[nonempty], labels[nonempty]
    keep = batched_nms(boxes, scores, labels, config.nms_threshold)  # decreasing score
    keep = keep[: config.max_detections]
    kept = boxes[keep]
    if config.box_voting > 0 and keep.numel():
        kept = vote_boxes(kept, labels[keep], boxes, scores, labels, config.box_voting)
    return ImageDetections(boxes=kept, scores=scores[keep], labels=labels[keep].to(torch.int64))


def vote_boxes(
    kept: Tensor, kept_labels: Tensor, boxes: Tensor, scores: Tensor, labels: Tensor, iou: float
) -> Tensor:
    """kept [D, 4] with labels [D]; the candidates ``boxes`` [M, 4], ``scores`` [M], ``labels`` [M]
    -> [D, 4]: each kept box as the score-weighted mean of the candidates of its label at IoU >= ``iou``."""
    from rcnn_cli.boxes import box_iou

    overlap = box_iou(kept, boxes)  # [D, M]
    voters = (overlap >= iou) & (kept_labels[:, None] == labels[None, :])
    weights = voters.to(scores.dtype) * scores[None, :]
    voted = weights @ boxes / weights.sum(dim=1, keepdim=True)
    # A kept box always votes for itself (IoU 1), so the sum is > 0; the guard is for iou > 1 - eps.
    return torch.where(voters.any(dim=1, keepdim=True), voted, kept)


def postprocess_detections(
    logits: Tensor,
    deltas: Tensor,
    proposals: Tensor,
    height: int,
    width: int,
    config: PostprocessConfig = PostprocessConfig(),
) -> ImageDetections:
    """Steps 1-5 above for one image (steps 1-2: the head's test-time outputs,
    :meth:`FastRCNNHead.scores_and_boxes`). ``proposals`` [R, 4] are in original pixels (not scaled)."""
    scores, boxes = FastRCNNHead.scores_and_boxes(logits, deltas, proposals, height, width)
    return select_detections(scores, boxes, config)
