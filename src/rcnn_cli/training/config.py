"""What ``rcnn train`` optimizes and how: one frozen dataclass, stored with every resume checkpoint.

The recipe (iterations, learning rate and its steps, warm-up) depends on the backbone:
:meth:`TrainConfig.for_backbone` applies the user's choices on top of the backbone's recipe, so the
CLI, tests and scripts build the same run. A config checks itself when it is built: a bad value is
one :class:`RcnnError` naming the option, before any data is read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any, Literal, get_args

from rcnn_cli.errors import RcnnError
from rcnn_cli.rpn.settings import AnchorTargetConfig, ProposalLayerConfig
from rcnn_cli.training.sampler_config import SamplerConfig

Optimizer = Literal["sgd", "adamw"]  # sgd: the paper's; adamw: Adam with decoupled weight decay
Sampler = Literal["hierarchical", "region"]  # Fast R-CNN's N images x R/N RoIs | R-CNN/SPPnet's
TargetNorm = Literal["empirical", "fixed"]  # box-target means/stds from the data | (0, 0.1, 0.2)
#: What L_cls asks of a foreground RoI: p_u = 1 (the paper's) | p_u = its IoU with the ground truth
#: (rcnn_cli.models.losses, "quality" targets)
ClsTarget = Literal["hard", "iou"]
#: What one run trains: the Fast R-CNN head on proposals from a folder; Faster R-CNN's approximate
#: joint training (RPN + head, the RPN's proposals feed the head every iteration); the RPN alone.
Stage = Literal["fast_rcnn", "joint", "rpn"]
STAGES: tuple[str, ...] = get_args(Stage)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SAMPLERS: tuple[str, ...] = get_args(Sampler)
TARGET_NORMS: tuple[str, ...] = get_args(TargetNorm)
CLS_TARGETS: tuple[str, ...] = get_args(ClsTarget)


@dataclass(frozen=True)
class Recipe:
    """The schedule a backbone trains with where the user does not set it."""

    iters: int
    lr: float
    lr_steps: tuple[int, ...]
    warmup_iters: int


#: The paper's (§4; S, M and L from ImageNet weights): 40k iterations at lr 0.001, x0.1 at 30k.
PAPER_RECIPE = Recipe(iters=40000, lr=0.001, lr_steps=(30000,), warmup_iters=0)
#: The small backbone, trained from scratch on a CPU: a higher lr after a short warm-up, 3k iterations.
SMALL_RECIPE = Recipe(iters=3000, lr=0.01, lr_steps=(2250,), warmup_iters=100)
#: Backbones with a recipe of their own; every other backbone gets the paper's.
RECIPES: dict[str, Recipe] = {"small": SMALL_RECIPE, "small_context": SMALL_RECIPE}
#: With --iters but no --lr-steps, the lr drops at this fraction of the run (the paper's 30k of 40k).
LR_STEP_FRACTION = 0.75


@dataclass(frozen=True)
class TrainConfig:
    """The optimization and sampling choices; defaults are the paper's (docs/ARCHITECTURE.md, "The
    papers' defaults")."""

    iters: int = PAPER_RECIPE.iters
    lr: float = PAPER_RECIPE.lr
    lr_steps: tuple[int, ...] = PAPER_RECIPE.lr_steps
    lr_gamma: float = 0.1
    warmup_iters: int = PAPER_RECIPE.warmup_iters
    optimizer: Optimizer = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0005
    seed: int = 0
    sampler: Sampler = "hierarchical"
    sampling: SamplerConfig = field(default_factory=SamplerConfig)
    flip: bool = True
    #: photometric jitter: brightness, contrast and saturation factors in [1 - this, 1 + this]
    #: (rcnn_cli.training.photometric); 0 leaves the pixels as they are
    color_jitter: float = 0.0
    lam: float = 1.0
    #: λ at iteration 0, falling linearly to ``lam`` at the first lr step (at ``iters`` without one);
    #: None: ``lam`` throughout (rcnn_cli.training.solver.box_loss_weight)
    lam_start: float | None = None
    cls_only: bool = False
    cls_target: ClsTarget = "hard"
    #: decay d of the moving average of the weights that model.pt holds
    #: (rcnn_cli.training.weight_average); None: the last iteration's weights
    ema: float | None = None
    target_norm: TargetNorm = "empirical"
    max_proposals: int = 2000  # best proposals used per image; 0 uses all
    checkpoint_every: int = 1000
    explode_threshold: float = 1e4
    amp: bool = False
    time_limit_s: float | None = None  # stop (checkpointed, resumable) after this much wall time
    #: fit the schedule into this much wall time (rcnn_cli.training.budget); None: as given
    budget_s: float | None = None
    stage: Stage = "fast_rcnn"
    rpn_targets: AnchorTargetConfig = field(default_factory=AnchorTargetConfig)
    rpn_proposals: ProposalLayerConfig = field(default_factory=ProposalLayerConfig.for_training)
    rpn_lam: float = 1.0  # weight of the RPN's loss in the joint loss (the released code's 1)

    def __post_init__(self) -> None:
        if self.optimizer == "adam":  # the old name, which built AdamW all along
            raise RcnnError("--optimizer adam is called adamw now (it always was AdamW)")
        _choice("--optimizer", self.optimizer, OPTIMIZERS)
        _choice("--sampler", self.sampler, SAMPLERS)
        _choice("--target-norm", self.target_norm, TARGET_NORMS)
        _choice("--cls-target", self.cls_target, CLS_TARGETS)
        _choice("stage", self.stage, STAGES)
        _at_least("--rpn-lambda", self.rpn_lam, 0)
        if self.stage != "fast_rcnn" and self.target_norm == "empirical":
            # The RPN's proposals change as it learns: no fixed set to take statistics from. The
            # released Faster R-CNN code normalizes with the same fixed means and stds.
            raise RcnnError("--target-norm empirical needs fixed proposals; RPN training uses 'fixed'")
        _at_least("--iters", self.iters, 1)
        _at_least("--warmup", self.warmup_iters, 0)
        _at_least("--max-proposals", self.max_proposals, 0)  # 0: all, as in propose and detect
        _at_least("--checkpoint-every", self.checkpoint_every, 0)
        _at_least("--weight-decay", self.weight_decay, 0)
        _at_least("--lambda", self.lam, 0)
        if self.lam_start is not None:
            _at_least("--lambda-start", self.lam_start, 0)
        _positive("--lr", self.lr)
        _positive("explode_threshold", self.explode_threshold)
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise RcnnError(f"--time-limit must be > 0 minutes, got {self.time_limit_s / 60:g}")
        if self.budget_s is not None and not self.budget_s > 0:
            raise RcnnError(f"--budget must be more than 0 seconds, got {self.budget_s:g}")
        if not 0 <= self.color_jitter < 1:
            raise RcnnError(f"--color-jitter must be in [0, 1), got {self.color_jitter}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise RcnnError(f"--ema must be in (0, 1), got {self.ema}")
        if not 0 <= self.momentum < 1:
            raise RcnnError(f"--momentum must be in [0, 1), got {self.momentum}")
        if not 0 < self.lr_gamma <= 1:
            raise RcnnError(f"lr_gamma must be in (0, 1], got {self.lr_gamma}")
        # Steps past --iters are allowed: a run stopped early and resumed with more --iters reaches them.
        steps = tuple(self.lr_steps)
        if any(s < 1 for s in steps) or any(b <= a for a, b in pairwise(steps)):
            shown = ",".join(str(s) for s in steps)
            raise RcnnError(f"--lr-steps must be increasing iterations >= 1, got {shown}")

    @classmethod
    def for_backbone(
        cls,
        backbone: str,
        *,
        iters: int | None = None,
        lr: float | None = None,
        lr_steps: tuple[int, ...] | None = None,
        warmup_iters: int | None = None,
        **options: Any,
    ) -> TrainConfig:
        """``backbone``'s recipe (:data:`RECIPES`, else the paper's) with the user's choices on top.

        ``None`` is "not given": the recipe's value. Without ``lr_steps``, the lr drops at the recipe's
        step, or at :data:`LR_STEP_FRACTION` of ``iters`` when ``iters`` is given (the recipe's step
        may lie beyond a shorter run). ``options``: any other TrainConfig field.
        """
        recipe = RECIPES.get(backbone, PAPER_RECIPE)
        if lr_steps is None:
            lr_steps = recipe.lr_steps if iters is None else (max(1, int(iters * LR_STEP_FRACTION)),)
        return cls(
            iters=recipe.iters if iters is None else iters,
            lr=recipe.lr if lr is None else lr,
            lr_steps=lr_steps,
            warmup_iters=recipe.warmup_iters if warmup_iters is None else warmup_iters,
            **options,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RcnnError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")


def _at_least(option: str, value: float, low: float) -> None:
    if not value >= low:
        raise RcnnError(f"{option} must be >= {low}, got {value}")


def _positive(option: str, value: float) -> None:
    if not value > 0:
        raise RcnnError(f"{option} must be > 0, got {value}")
