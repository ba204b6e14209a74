"""Fast R-CNN (Girshick, ICCV 2015): one conv pass per image, then a per-RoI head.

Shapes: N images, R RoIs, K object classes; class 0 is background, so scores have K+1 columns and
box deltas 4·(K+1) (class-specific regression, paper §2.2). RoIs are Tensor[R, 5] rows
``(batch_index, x1, y1, x2, y2)`` in pixels of the *scaled* image that went through the backbone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from torch import Tensor, nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.backbones import SPECS, build_backbone
from rcnn_cli.models.heads import POOL_KINDS, fc_layers, init_fc, init_predictors, make_pool, pooled_bins

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`FastRCNN`; stored as a plain dict in checkpoints.

    ``scales``/``max_size``: shorter image side(s) and the cap on the longer side (paper: 600 / 1000;
    several scales = the multi-scale option). ``pixel_mean``/``pixel_std``: RGB in [0, 1], ImageNet's
    by default so that torchvision-layout weights see the input they were trained on.
    """

    backbone: str
    num_classes: int
    pool: str = "roi"
    output_size: int = 7
    levels: tuple[int, ...] = (6, 3, 2, 1)
    sampling_ratio: int = 2
    fc6_dim: int = 4096
    fc7_dim: int = 4096
    dropout: float = 0.5
    scales: tuple[int, ...] = (600,)
    max_size: int = 1000
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        """Refuse what cannot make a network, with the field's name (also for configs read from files)."""
        if self.backbone not in SPECS:
            raise RcnnError(f"backbone {self.backbone!r}: choose one of {', '.join(SPECS)}")
        if self.pool not in POOL_KINDS:
            raise RcnnError(f"pool {self.pool!r}: choose one of {', '.join(POOL_KINDS)}")
        for name in ("num_classes", "output_size", "fc6_dim", "fc7_dim", "max_size"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("sampling_ratio", self.sampling_ratio, minimum=0)
        for name in ("levels", "scales"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values:
                raise RcnnError(f"{name} {values!r}: expected one or more integers")
            for value in values:
                _check_int(name, value, minimum=1)
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise RcnnError(f"dropout {self.dropout!r}: must be in [0, 1)")
        for name in ("pixel_mean", "pixel_std"):
            values = getattr(self, name)
            if len(values) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise RcnnError(f"{name} {values!r}: expected three finite RGB numbers")
        if not all(v > 0 for v in self.pixel_std):
            raise RcnnError(f"pixel_std {self.pixel_std!r}: must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """The inverse of :meth:`to_dict`; unknown keys are ignored, missing required ones refused."""
        names = {f.name for f in fields(cls)}
        missing = [name for name in ("backbone", "num_classes") if name not in data]
        if missing:
            raise RcnnError(f"model config lacks {', '.join(missing)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**kwargs)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RcnnError(f"{name} {value!r}: expected an integer >= {minimum}")


#: Per-backbone defaults: the paper's for S/M/L; for ``small``, a scale that keeps CPU training short.
BACKBONE_DEFAULTS: dict[str, dict[str, Any]] = {
    "caffenet": {},
    "vgg_cnn_m_1024": {},
    "vgg16": {},
    "small": {"scales": (400,), "max_size": 700, "dropout": 0.25},
}


def default_config(backbone: str, num_classes: int, **overrides: Any) -> ModelConfig:
    """The paper's configuration for ``backbone`` (pool size, fc dims from its spec), then ``overrides``."""
    spec = SPECS.get(backbone)
    if spec is None:
        build_backbone(backbone)  # raises the user-facing error listing the known names
        raise AssertionError("unreachable")
    base = ModelConfig(
        backbone=backbone,
        num_classes=num_classes,
        output_size=spec.pool_size,
        fc6_dim=spec.fc_dims[0],
        fc7_dim=spec.fc_dims[1],
        **BACKBONE_DEFAULTS.get(backbone, {}),
    )
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


class FastRCNN(nn.Module):
    """Backbone + RoI/SPP pooling + fc6 + fc7 + ``cls_score`` (K+1) + ``bbox_pred`` (4·(K+1)).

    After truncated SVD (paper §3.1) ``fc6``/``fc7`` may be ``nn.Sequential(Linear(v->t, no bias),
    Linear(t->u))``; the forward pass does not care which.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone)
        self.pool = make_pool(
            config.pool,
            1.0 / self.backbone.stride,
            output_size=config.output_size,
            levels=config.levels,
            sampling_ratio=config.sampling_ratio,
        )
        in_dim = self.backbone.out_channels * pooled_bins(config.pool, config.output_size, config.levels)
        self.fc6: nn.Module = nn.Linear(in_dim, config.fc6_dim)
        self.fc7: nn.Module = nn.Linear(config.fc6_dim, config.fc7_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.cls_score = nn.Linear(config.fc7_dim, config.num_classes + 1)
        self.bbox_pred = nn.Linear(config.fc7_dim, 4 * (config.num_classes + 1))
        init_fc(self.fc6)  # type: ignore[arg-type]
        init_fc(self.fc7)  # type: ignore[arg-type]
        init_predictors(self.cls_score, self.bbox_pred)

    @property
    def num_classes(self) -> int:
        """K, object classes without background."""
        return self.config.num_classes

    def features(self, images: Tensor) -> Tensor:
        """images: Tensor[N, 3, H, W] (normalized) -> conv feature maps Tensor[N, C, H', W']."""
        return self.backbone(images)

    def head(self, features: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        """features: Tensor[N, C, H', W'], rois: Tensor[R, 5] in scaled-image pixels.

        Returns (class logits Tensor[R, K+1], box deltas Tensor[R, 4·(K+1)]).
        """
        pooled = self.pool(features, rois.to(features.dtype))
        x = fc_layers(pooled, self.fc6, self.fc7, self.dropout)
        return self.cls_score(x), self.bbox_pred(x)

    def forward(self, images: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(self.features(images), rois)
