"""What distillation reads and how long it trains (``rcnn compress --distill-on``, ``--svd-sweep``)."""

from __future__ import annotations

from dataclasses import dataclass

from rcnn_cli.errors import RcnnError


@dataclass(frozen=True)
class DistillConfig:
    """Calibration images and optimization; the defaults took ~1 min on 2 CPU cores for the small head.

    images: calibration images (at most); rois_per_image: RoIs of each in the bank; steps, batch_size,
    lr: Adam on batches of bank RoIs, cosine-decayed; seed: the image choice, RoI choice and batches.
    """

    images: int = 150
    rois_per_image: int = 256
    steps: int = 2000
    batch_size: int = 1024
    lr: float = 3e-4
    seed: int = 0
    #: Upper bound on the pooled features kept in memory; fewer RoIs per image are taken above it.
    max_bank_mib: int = 2048

    def __post_init__(self) -> None:
        if self.images < 1 or self.steps < 1:
            raise RcnnError("--distill-images and --distill-steps must be >= 1")
        if min(self.rois_per_image, self.batch_size, self.max_bank_mib) < 1:
            raise RcnnError(
                "distillation needs rois_per_image, batch_size and max_bank_mib >= 1, got "
                f"{self.rois_per_image}, {self.batch_size}, {self.max_bank_mib}"
            )
        if not self.lr > 0:
            raise RcnnError(f"the distillation lr must be > 0, got {self.lr}")
