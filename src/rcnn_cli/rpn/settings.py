"""The RPN's settings as plain data (no torch), so that ``rcnn train``'s options and the training
config can name them at start-up: how anchors are labelled and sampled (§3.1.2–3.1.3), and how many
proposals the proposal layer keeps (§3.3). :mod:`.anchor_targets` and :mod:`.proposal_layer` use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rcnn_cli.errors import RcnnError


@dataclass(frozen=True)
class AnchorTargetConfig:
    """The paper's labelling and sampling of anchors.

    ``allowed_border``: how far (pixels) an anchor may reach outside the image before it is ignored,
    0 as in the paper; only with ``ignore_border``.
    """

    positive_iou: float = 0.7
    negative_iou: float = 0.3
    batch_size: int = 256
    positive_fraction: float = 0.5
    ignore_border: bool = True
    allowed_border: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.negative_iou <= self.positive_iou <= 1.0:
            raise RcnnError(
                "--rpn-negative-iou / --rpn-positive-iou: need 0 <= negative <= positive <= 1, got "
                f"{self.negative_iou:g} and {self.positive_iou:g}"
            )
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise RcnnError(f"--rpn-batch-size: must be a positive integer, got {self.batch_size}")
        if not 0.0 <= self.positive_fraction <= 1.0:
            raise RcnnError(f"--rpn-positive-fraction: must be in [0, 1], got {self.positive_fraction:g}")
        if not (math.isfinite(self.allowed_border) and self.allowed_border >= 0):
            raise RcnnError(f"--rpn-allowed-border: must be >= 0 pixels, got {self.allowed_border:g}")


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
