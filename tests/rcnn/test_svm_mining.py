"""R-CNN's linear SVMs (rcnn_cli.rcnn.svm): the liblinear wrapper and hard negative mining on toy blobs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from rcnn_cli.errors import RcnnError
from rcnn_cli.rcnn import svm as svm_module
from rcnn_cli.rcnn.svm import (
    LinearSVM,
    SVMConfig,
    feature_scale,
    hard_negative_mining,
    hard_negatives,
    train_linear_svm,
)

D = 5
IMAGES = 5
PER_IMAGE = 300


def blobs(seed: int = 0, spread: float = 0.0) -> tuple[np.ndarray, list[np.ndarray]]:
    """60 positives around (3, 3, 0, 0, 0) and 5 images of 300 negatives around (-2, -2, 0, 0, 0), each
    image's blob moved by a N(0, spread²) shift, all scaled to mean norm 20: most negatives lie far beyond
    the margin. Without a shift the classes are separable; with one, a few negatives of some images only
    become hard once later images have moved the model (mining then needs several passes)."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(0, 1, (60, D)) + np.array([3, 3, 0, 0, 0])
    negs = [
        rng.normal(0, 1.5, (PER_IMAGE, D)) - np.array([2, 2, 0, 0, 0]) + rng.normal(0, spread, D)
        for _ in range(IMAGES)
    ]
    s = feature_scale(np.concatenate([pos, *negs]))
    return (pos * s).astype(np.float32), [(n * s).astype(np.float32) for n in negs]


class Loader:
    """One image's negatives, counting how often they are loaded."""

    def __init__(self, negatives: np.ndarray) -> None:
        self.negatives, self.calls = negatives, 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.negatives


# tol tight enough that two solvers of the same problem agree to ~1e-6.
CONFIG = SVMConfig(retrain_limit=40, max_passes=10, tol=1e-7)


def test_feature_scale_hand_computed():
    # Norms 5 (3-4-5) and 10: mean 7.5, so s = 20 / 7.5.
    sample = np.array([[3.0, 4.0], [0.0, 10.0]])
    assert feature_scale(sample) == pytest.approx(20 / 7.5)
    assert feature_scale(sample, target_norm=1.0) == pytest.approx(1 / 7.5)
    with pytest.raises(RcnnError, match="non-empty"):
        feature_scale(np.zeros((0, 3)))
    with pytest.raises(RcnnError, match="mean L2 norm"):
        feature_scale(np.zeros((2, 3)))


def test_train_separates_and_matches_liblinear_directly():
    pos, negs = blobs()
    neg = np.concatenate(negs)
    model = train_linear_svm(pos, neg, CONFIG)
    assert model.weight.dtype == np.float32 and model.weight.shape == (D,)
    assert (model.decision(pos) > 0).all() and (model.decision(neg) < 0).all()
    assert model.decision(neg).dtype == np.float32

    direct = LinearSVC(
        loss="hinge",
        dual=True,
        C=0.001,
        class_weight={1: 2.0, -1: 1.0},
        intercept_scaling=10.0,
        tol=1e-7,
        max_iter=10_000,
        random_state=0,
    ).fit(np.concatenate([pos, neg]), np.r_[np.ones(len(pos)), -np.ones(len(neg))])
    np.testing.assert_allclose(model.weight, direct.coef_[0], rtol=1e-6, atol=1e-7)
    assert model.bias == pytest.approx(direct.intercept_[0], rel=1e-6)


def test_optimum_is_liblinear_objective_with_bias_feature_regularized():
    """The model minimizes ½‖w‖² + ½(b/B)² + C Σ c_i hinge_i (rcnn_train.m's logged objective):
    no small step in any direction, the bias's included, lowers it."""
    pos, negs = blobs(seed=2, spread=3.0)
    neg = np.concatenate(negs).astype(np.float64)
    cfg = CONFIG

    def objective(w: np.ndarray, b: float) -> float:
        hinge_pos = np.maximum(0, 1 - (pos @ w + b)).sum()
        hinge_neg = np.maximum(0, 1 + (neg @ w + b)).sum()
        reg = 0.5 * w @ w + 0.5 * (b / cfg.bias_multiplier) ** 2
        return reg + cfg.C * (cfg.positive_weight * hinge_pos + hinge_neg)

    model = train_linear_svm(pos, neg, cfg)
    w, b = model.weight.astype(np.float64), model.bias
    best = objective(w, b)
    rng = np.random.default_rng(1)
    steps = [np.r_[np.zeros(D), s] for s in (1e-2, -1e-2)] + list(rng.normal(0, 1e-2, (20, D + 1)))
    for step in steps:
        # The bias moves by B·δw_B, as liblinear's bias feature's weight would.
        assert objective(w + step[:D], b + cfg.bias_multiplier * step[D]) > best


@pytest.mark.parametrize(
    ("pos", "neg", "message"),
    [
        (np.zeros((0, D)), np.ones((3, D)), "no positives"),
        (np.ones((3, D)), np.zeros((0, D)), "no negatives"),
        (np.full((3, D), np.nan), np.ones((3, D)), "non-finite"),
        (np.ones((3, D)), np.array([[np.inf] * D]), "non-finite"),
        (np.ones((3, D)), np.ones((3, D + 1)), "feature dimensions"),
    ],
)
def test_train_refuses_bad_input_in_one_line(pos, neg, message):
    with pytest.raises(RcnnError, match=message) as info:
        train_linear_svm(pos, neg, SVMConfig())
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"C": 0.0}, "--svm-c"),
        ({"C": float("nan")}, "--svm-c"),
        ({"positive_weight": -1.0}, "--svm-pos-weight"),
        ({"bias_multiplier": 0.0}, "--svm-bias-mult"),
        ({"easy_threshold": -1.0, "hard_threshold": -1.1}, "--evict-thresh"),
        ({"retrain_limit": 0}, "--retrain-limit"),
        ({"max_passes": 0}, "--hard-negative-passes"),
        ({"negative_iou": 0.0}, "--neg-iou"),
        ({"feature_norm": 0.0}, "--feat-norm"),
    ],
)
def test_config_refuses_bad_options(changes, option):
    with pytest.raises(RcnnError, match=option):
        SVMConfig(**changes)


def test_hard_negatives_per_image_equal_one_pass_over_all():
    pos, negs = blobs()
    model = train_linear_svm(pos, negs[0], CONFIG)  # any fixed model
    offsets = np.cumsum([0] + [len(n) for n in negs])
    per_image = np.concatenate(
        [hard_negatives(model, n, -1.0001) + o for n, o in zip(negs, offsets, strict=False)]
    )
    brute = np.flatnonzero(model.decision(np.concatenate(negs)) > -1.0001)
    np.testing.assert_array_equal(per_image, brute)
    assert 0 < len(brute) < offsets[-1]
    np.testing.assert_array_equal(hard_negatives(None, negs[0], -1.0001), np.arange(PER_IMAGE))


def test_mined_svm_is_the_svm_of_all_negatives(monkeypatch):
    pos, negs = blobs(seed=2, spread=3.0)
    loaders = [Loader(n) for n in negs]
    trained_on: list[np.ndarray] = []
    real_train = svm_module.train_linear_svm

    def spy(positives, negatives, config):
        trained_on.append(negatives.copy())
        return real_train(positives, negatives, config)

    monkeypatch.setattr(svm_module, "train_linear_svm", spy)
    seen: list[tuple[int, int]] = []
    mined, stats = hard_negative_mining(pos, loaders, CONFIG, progress=lambda p, i: seen.append((p, i)))
    full = real_train(pos, np.concatenate(negs), CONFIG)

    # (b) Only support vectors matter: the same SVM, the same decisions.
    np.testing.assert_allclose(mined.weight, full.weight, rtol=1e-4, atol=1e-6)
    assert mined.bias == pytest.approx(full.bias, rel=1e-4)
    grid = np.stack(np.meshgrid(np.linspace(-15, 15, 61), np.linspace(-15, 15, 61)), -1).reshape(-1, 2)
    test = np.concatenate(
        [np.pad(grid, ((0, 0), (0, D - 2))), np.random.default_rng(2).normal(0, 8, (2000, D))]
    )
    decided = np.abs(full.decision(test)) > 1e-3
    assert (np.sign(mined.decision(test)) == np.sign(full.decision(test)))[decided].all()

    # (c) Each image loaded once per pass; the cache, largest right before each training, never held all
    # the negatives, nor twice the same one.
    assert [loader.calls for loader in loaders] == [stats.passes] * IMAGES
    assert seen == [(p, i) for p in range(stats.passes) for i in range(IMAGES)]
    assert len(trained_on) == stats.retrains
    assert max(len(x) for x in trained_on) < IMAGES * PER_IMAGE / 2
    assert all(len(np.unique(x, axis=0)) == len(x) for x in trained_on)
    assert len(trained_on[0]) == PER_IMAGE  # the first model: all of the first image's negatives

    # (d) Stats: stopped after a pass that found nothing; retrained within passes, not only at their ends.
    assert stats.converged and stats.hard_found_per_pass[-1] == 0
    assert stats.passes == len(stats.hard_found_per_pass) >= 3
    assert stats.hard_found_per_pass[0] > PER_IMAGE
    assert stats.retrains > stats.passes
    assert 0 < stats.cached_negatives < IMAGES * PER_IMAGE
    support = np.concatenate(negs)[full.decision(np.concatenate(negs)) > -1]
    assert stats.cached_negatives >= len(support)


def test_mining_stops_at_max_passes_unconverged():
    pos, negs = blobs()
    loaders = [Loader(n) for n in negs]
    _, stats = hard_negative_mining(pos, loaders, SVMConfig(max_passes=1))
    assert (stats.passes, stats.converged, len(stats.hard_found_per_pass)) == (1, False, 1)
    assert stats.retrains == 2  # after the first image, and at the end of the pass
    assert [loader.calls for loader in loaders] == [1] * IMAGES


def test_mining_skips_images_without_negatives_and_refuses_none_at_all():
    pos, negs = blobs()
    empty = np.zeros((0, D), np.float32)
    model, stats = hard_negative_mining(pos, [lambda: empty, lambda: negs[0]], CONFIG)
    assert isinstance(model, LinearSVM) and stats.converged
    with pytest.raises(RcnnError, match="no negatives"):
        hard_negative_mining(pos, [lambda: empty] * 3, CONFIG)
