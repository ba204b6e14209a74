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
from rcnn_cli.models.backbones import build_backbone
from rcnn_cli.models.heads import FastRCNNHead, make_pool, pooled_bins
from rcnn_cli.models.specs import METHOD_KINDS, POOL_KINDS, SPECS, MethodKind, PoolKind
from rcnn_cli.rpn.network import RPNConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`FastRCNN`; stored as a plain dict in checkpoints.

    ``scales``/``max_size``: shorter image side(s) and the cap on the longer side (paper: 600 / 1000;
    several scales = the multi-scale option). ``pixel_mean``/``pixel_std``: RGB in [0, 1], ImageNet's
    by default so that torchvision-layout weights see the input they were trained on. ``rpn``: the
    region proposal network of a Faster R-CNN (:class:`rcnn_cli.models.faster_rcnn.FasterRCNN`);
    None for a Fast R-CNN that reads its proposals from elsewhere. ``method``: how regions are read
    and scored (:data:`rcnn_cli.models.specs.METHOD_KINDS`); for ``rcnn``, ``warp_size`` and
    ``context_padding`` are the warped window and the context around the box in it, in pixels (0 and
    -1: the backbone's input size, and 16 px at the paper's 227 scaled to it).
    """

    backbone: str
    num_classes: int
    pool: PoolKind = "roi"
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
    rpn: RPNConfig | None = None
    method: MethodKind = "fast_rcnn"
    warp_size: int = 0
    context_padding: int = -1

    def __post_init__(self) -> None:
        """Refuse what cannot make a network, naming the option (also for configs read from files)."""
        if self.backbone not in SPECS:
            raise RcnnError(f"--backbone must be one of {', '.join(SPECS)}; got {self.backbone!r}")
        # Types first: a config read from a checkpoint file may hold anything.
        for name in (
            "num_classes",
            "output_size",
            "sampling_ratio",
            "fc6_dim",
            "fc7_dim",
            "max_size",
            "warp_size",
            "context_padding",
        ):
            _check_int(name, getattr(self, name))
        for name in ("levels", "scales"):
            values = getattr(self, name)
            if not isinstance(values, tuple):
                raise RcnnError(f"{name} {values!r}: expected a list of integers")
            for value in values:
                _check_int(name, value)
        if not _is_number(self.dropout):
            raise RcnnError(f"dropout {self.dropout!r}: expected a number")
        for name in ("pixel_mean", "pixel_std"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or len(values) != 3 or not all(map(_is_number, values)):
                raise RcnnError(f"{name} {values!r}: expected three finite RGB numbers")
        if min(self.pixel_std) <= 0:
            raise RcnnError(f"pixel_std must be positive, got {self.pixel_std}")
        if self.pool not in POOL_KINDS:
            raise RcnnError(f"--pool must be one of {', '.join(POOL_KINDS)}; got {self.pool!r}")
        if self.num_classes < 1:
            raise RcnnError(f"a model needs at least one object class, got {self.num_classes}")
        if min(self.fc6_dim, self.fc7_dim) < 1:
            raise RcnnError(f"--fc-dims must be >= 1, got {self.fc6_dim},{self.fc7_dim}")
        if not self.scales or min(self.scales) < 1 or self.max_size < 1:
            raise RcnnError(f"--scales and --max-size must be >= 1, got {self.scales} and {self.max_size}")
        if self.output_size < 1 or not self.levels or min(self.levels) < 1:
            raise RcnnError(f"pooled sizes must be >= 1, got {self.output_size} and levels {self.levels}")
        if not 0 <= self.dropout < 1:
            raise RcnnError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.sampling_ratio < 0:
            raise RcnnError(f"sampling_ratio must be >= 0, got {self.sampling_ratio}")
        if self.rpn is not None and not isinstance(self.rpn, RPNConfig):
            raise RcnnError(f"rpn {self.rpn!r}: expected an RPN config")
        if self.method not in METHOD_KINDS:
            raise RcnnError(f"--method must be one of {', '.join(METHOD_KINDS)}; got {self.method!r}")
        if SPECS[self.backbone].head == "stage":
            if self.method != "fast_rcnn":
                raise RcnnError(
                    f"--backbone {self.backbone} has no fc7 for R-CNN's and SPPnet's SVMs (its per-RoI head "
                    "is its last conv stage): train it with --method fast-rcnn or faster-rcnn"
                )
            if self.pool == "spp":
                raise RcnnError(
                    f"--backbone {self.backbone}: its head stage takes a square RoI grid; "
                    "use --pool roi or align"
                )
            if (self.fc6_dim, self.fc7_dim) != SPECS[self.backbone].fc_dims:
                raise RcnnError(
                    f"--fc-dims: --backbone {self.backbone} has no fc6/fc7 "
                    "(its per-RoI head is its last conv stage)"
                )
        if self.method != "fast_rcnn" and self.rpn is not None:
            raise RcnnError(f"a {self.method} model reads proposals from a folder; it has no RPN")
        if self.warp_size < 0 or self.context_padding < -1 or not 2 * self.region_padding < self.region_size:
            raise RcnnError(
                f"--warp-size {self.region_size} with --context-padding {self.region_padding}: "
                "the padding must leave part of the window (2 x padding < size)"
            )

    @property
    def region_size(self) -> int:
        """S, the square R-CNN warps each region to: ``warp_size`` or the backbone's input size."""
        return self.warp_size or SPECS[self.backbone].input_size

    @property
    def region_padding(self) -> int:
        """p, the context in the warped window: ``context_padding`` or R-CNN's 16 px of 227, scaled."""
        if self.context_padding >= 0:
            return self.context_padding
        return round(16 * self.region_size / 227)

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
        if kwargs.get("rpn") is not None:
            kwargs["rpn"] = RPNConfig.from_dict(kwargs["rpn"])
        return cls(**kwargs)


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RcnnError(f"{name} {value!r}: expected an integer")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: Per-backbone defaults: the paper's for S/M/L; for ``small``, a scale that keeps CPU training short.
BACKBONE_DEFAULTS: dict[str, dict[str, Any]] = {
    "caffenet": {},
    "vgg_cnn_m_1024": {},
    "vgg16": {},
    "small": {"scales": (400,), "max_size": 700, "dropout": 0.25},
    "small_context": {"scales": (400,), "max_size": 700, "dropout": 0.25},
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
    """The backbone's conv layers, then the per-RoI :class:`FastRCNNHead` (``self.head``).

    State-dict keys are those checkpoints have always had: ``backbone.*`` and, for the head, ``fc6.*``,
    ``fc7.*``, ``cls_score.*``, ``bbox_pred.*`` without a ``head.`` prefix (docs/FORMATS.md). Two hooks
    drop the prefix when saving and put it back when loading; ``named_parameters()`` keeps it.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone)
        pool = make_pool(
            config.pool,
            1.0 / self.backbone.stride,
            output_size=config.output_size,
            levels=config.levels,
            sampling_ratio=config.sampling_ratio,
        )
        in_features = self.backbone.out_channels * pooled_bins(config.pool, config.output_size, config.levels)
        self.head: nn.Module
        if SPECS[config.backbone].head == "stage":  # C4: the network's last stage is the per-RoI head
            from rcnn_cli.models.stage_head import StageHead, head_stage

            stage, width = head_stage(config.backbone)
            self.head = StageHead(
                pool, stage, self.backbone.out_channels, width, config.num_classes, config.output_size
            )
        else:
            self.head = FastRCNNHead(
                pool, in_features, config.num_classes, config.fc6_dim, config.fc7_dim, config.dropout
            )
        self.register_state_dict_post_hook(_drop_head_prefix)
        self.register_load_state_dict_pre_hook(_add_head_prefix)

    @property
    def num_classes(self) -> int:
        """K, object classes without background."""
        return self.config.num_classes

    def features(self, images: Tensor) -> Tensor:
        """images: Tensor[N, 3, H, W] (normalized) -> conv feature maps Tensor[N, C, H', W']."""
        return self.backbone(images)

    def forward(self, images: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        """images: Tensor[N, 3, H, W], rois: Tensor[R, 5] in scaled-image pixels -> (class logits
        Tensor[R, K+1], box deltas Tensor[R, 4·(K+1)])."""
        return self.head(self.features(images), rois)


_HEAD = "head."


def _drop_head_prefix(module: nn.Module, state_dict: dict[str, Any], prefix: str, _meta: Any) -> None:
    """state_dict post-hook: ``head.fc6.weight`` -> ``fc6.weight`` (in place; the order is kept, as the
    head's keys come last)."""
    for key in [k for k in state_dict if k.startswith(prefix + _HEAD)]:
        state_dict[prefix + key[len(prefix) + len(_HEAD) :]] = state_dict.pop(key)


def _add_head_prefix(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_args: Any) -> None:
    """load_state_dict pre-hook: ``fc6.weight`` -> ``head.fc6.weight`` for the head's own children."""
    children = {name for name, _ in module.head.named_children()}
    for key in list(state_dict):
        if key.startswith(prefix) and key[len(prefix) :].split(".", 1)[0] in children:
            state_dict[prefix + _HEAD + key[len(prefix) :]] = state_dict.pop(key)
