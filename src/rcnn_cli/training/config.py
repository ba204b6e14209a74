"""What ``rcnn train`` optimizes and how: one frozen dataclass, stored with every resume checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rcnn_cli.training.sampling import SamplerConfig


@dataclass(frozen=True)
class TrainConfig:
    """The optimization and sampling choices; defaults are the paper's (DESIGN.md §4)."""

    iters: int = 40000
    lr: float = 0.001
    lr_steps: tuple[int, ...] = (30000,)
    lr_gamma: float = 0.1
    warmup_iters: int = 0
    optimizer: str = "sgd"  # sgd (paper) | adam
    momentum: float = 0.9
    weight_decay: float = 0.0005
    seed: int = 0
    sampler: str = "hierarchical"  # hierarchical | region
    sampling: SamplerConfig = field(default_factory=SamplerConfig)
    flip: bool = True
    lam: float = 1.0
    cls_only: bool = False
    target_norm: str = "empirical"  # empirical | fixed
    max_proposals: int = 2000
    checkpoint_every: int = 1000
    explode_threshold: float = 1e4
    amp: bool = False
    time_limit_s: float | None = None  # stop (checkpointed, resumable) after this much wall time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
