"""The minibatch sampling settings (Fast R-CNN §2.3), apart from the sampling code so that the command
line shows their defaults without loading torch. :mod:`rcnn_cli.training.sampling` uses them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerConfig:
    """The paper's defaults: N = 2, R = 128, 25% fg at IoU ≥ 0.5, bg IoU in [0.1, 0.5)."""

    images_per_batch: int = 2
    rois_per_batch: int = 128
    fg_fraction: float = 0.25
    fg_threshold: float = 0.5
    bg_threshold_lo: float = 0.1
    bg_threshold_hi: float = 0.5

    def __post_init__(self) -> None:
        from rcnn_cli.errors import RcnnError

        if self.images_per_batch < 1:
            raise RcnnError(f"--images-per-batch must be >= 1, got {self.images_per_batch}")
        if self.rois_per_batch < self.images_per_batch:
            raise RcnnError(
                f"--rois-per-batch must be >= --images-per-batch (R >= N), got R={self.rois_per_batch}, "
                f"N={self.images_per_batch}"
            )
        if not 0.0 <= self.fg_fraction <= 1.0:
            raise RcnnError(f"--fg-fraction must be in [0, 1], got {self.fg_fraction}")
        if not 0.0 <= self.bg_threshold_lo < self.bg_threshold_hi <= self.fg_threshold <= 1.0:
            raise RcnnError(
                "--bg-threshold-lo, --bg-threshold-hi, --fg-threshold must be ordered 0 <= lo < hi <= fg "
                f"<= 1, got {self.bg_threshold_lo}, {self.bg_threshold_hi}, {self.fg_threshold}"
            )
