"""The settings of distillation after truncated SVD (:mod:`rcnn_cli.inference.distill`), apart from
the code so that the command line can show their defaults without loading torch."""

from __future__ import annotations

from dataclasses import dataclass

from rcnn_cli.errors import RcnnError


@dataclass(frozen=True)
class DistillConfig:
    """Calibration images and optimization; the defaults took ~1 min on 2 CPU cores for the small head."""

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
