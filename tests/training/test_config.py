"""TrainConfig, SamplerConfig and ModelConfig check themselves when built; the recipe per backbone."""

from __future__ import annotations

import pytest

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.fast_rcnn import ModelConfig
from rcnn_cli.training.config import PAPER_RECIPE, SMALL_RECIPE, TrainConfig
from rcnn_cli.training.sampling import SamplerConfig


def test_the_small_backbone_has_its_own_recipe_the_others_the_papers() -> None:
    small = TrainConfig.for_backbone("small")
    assert (small.iters, small.lr, small.lr_steps, small.warmup_iters) == (3000, 0.01, (2250,), 100)
    for backbone in ("caffenet", "vgg_cnn_m_1024", "vgg16"):
        paper = TrainConfig.for_backbone(backbone)
        assert (paper.iters, paper.lr, paper.lr_steps, paper.warmup_iters) == (40000, 0.001, (30000,), 0)
    assert TrainConfig() == TrainConfig.for_backbone("vgg16")  # the dataclass defaults are the paper's
    assert SMALL_RECIPE.iters < PAPER_RECIPE.iters


def test_given_values_win_and_iters_alone_moves_the_lr_step_to_three_quarters() -> None:
    assert TrainConfig.for_backbone("small", iters=400).lr_steps == (300,)
    assert TrainConfig.for_backbone("vgg16", iters=1000).lr_steps == (750,)
    assert TrainConfig.for_backbone("small", iters=1).lr_steps == (1,)  # never at iteration 0
    cfg = TrainConfig.for_backbone("small", iters=400, lr_steps=(100, 200), lr=0.5, warmup_iters=0, seed=3)
    assert (cfg.lr_steps, cfg.lr, cfg.warmup_iters, cfg.seed) == ((100, 200), 0.5, 0, 3)
    assert TrainConfig.for_backbone("small", lr=0.02).iters == SMALL_RECIPE.iters


def test_lr_steps_past_the_last_iteration_are_allowed_for_a_later_resume() -> None:
    assert TrainConfig(iters=3, lr_steps=(4,)).lr_steps == (4,)
    assert TrainConfig(lr_steps=()).lr_steps == ()


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"sampler": "random"}, "--sampler must be one of hierarchical, region; got 'random'"),
        ({"optimizer": "rmsprop"}, "--optimizer must be one of sgd, adamw; got 'rmsprop'"),
        ({"optimizer": "adam"}, "--optimizer adam is called adamw now (it always was AdamW)"),
        ({"target_norm": "zscore"}, "--target-norm must be one of empirical, fixed; got 'zscore'"),
        ({"cls_target": "soft"}, "--cls-target must be one of hard, iou; got 'soft'"),
        ({"iters": 0}, "--iters must be >= 1, got 0"),
        ({"lr": 0.0}, "--lr must be > 0, got 0.0"),
        ({"lr_steps": (300, 200)}, "--lr-steps must be increasing iterations >= 1, got 300,200"),
        ({"lr_steps": (0,)}, "--lr-steps must be increasing iterations >= 1, got 0"),
        ({"lr_gamma": 0.0}, "lr_gamma must be in (0, 1], got 0.0"),
        ({"warmup_iters": -1}, "--warmup must be >= 0, got -1"),
        ({"momentum": 1.0}, "--momentum must be in [0, 1), got 1.0"),
        ({"weight_decay": -0.1}, "--weight-decay must be >= 0, got -0.1"),
        ({"lam": -1.0}, "--lambda must be >= 0, got -1.0"),
        ({"max_proposals": -1}, "--max-proposals must be >= 0, got -1"),
        ({"checkpoint_every": -5}, "--checkpoint-every must be >= 0, got -5"),
        ({"explode_threshold": 0.0}, "explode_threshold must be > 0, got 0.0"),
        ({"time_limit_s": -60.0}, "--time-limit must be > 0 minutes, got -1"),
    ],
)
def test_a_bad_train_option_is_one_error_naming_it(fields: dict, message: str) -> None:
    with pytest.raises(RcnnError) as err:
        TrainConfig(**fields)
    assert str(err.value) == message and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"fg_fraction": 1.5}, "--fg-fraction must be in [0, 1], got 1.5"),
        ({"images_per_batch": 0}, "--images-per-batch must be >= 1, got 0"),
        ({"images_per_batch": 4, "rois_per_batch": 2}, "--rois-per-batch must be >= --images-per-batch"),
        ({"bg_threshold_lo": 0.5}, "must be ordered 0 <= lo < hi <= fg <= 1, got 0.5, 0.5, 0.5"),
        ({"bg_threshold_hi": 0.6}, "--bg-threshold-lo, --bg-threshold-hi, --fg-threshold must be ordered"),
        ({"fg_threshold": 1.2}, "got 0.1, 0.5, 1.2"),
    ],
)
def test_a_bad_sampling_option_is_one_error_naming_it(fields: dict, message: str) -> None:
    with pytest.raises(RcnnError) as err:
        SamplerConfig(**fields)
    assert message in str(err.value) and str(err.value).startswith("--")
    with pytest.raises(RcnnError):  # the train config does not get built around it either
        TrainConfig.for_backbone("small", sampling=SamplerConfig(**fields))


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"pool": "max"}, "--pool must be one of roi, spp, align; got 'max'"),
        ({"fc6_dim": 0}, "--fc-dims must be >= 1, got 0,4096"),
        ({"scales": ()}, "--scales and --max-size must be >= 1"),
        ({"max_size": 0}, "--scales and --max-size must be >= 1"),
        ({"levels": (6, 0)}, "pooled sizes must be >= 1"),
        ({"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),
        ({"num_classes": 0}, "a model needs at least one object class, got 0"),
    ],
)
def test_a_bad_model_option_is_one_error_naming_it(fields: dict, message: str) -> None:
    with pytest.raises(RcnnError) as err:
        ModelConfig(**{"backbone": "small", "num_classes": 3, **fields})
    assert str(err.value).startswith(message)
