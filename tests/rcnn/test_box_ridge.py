"""R-CNN's class-specific bounding-box ridge regression (rcnn_cli.rcnn.bbox_regression)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rcnn_cli.boxes import box_iou
from rcnn_cli.errors import RcnnError
from rcnn_cli.rcnn.bbox_regression import (
    BoxRegressionConfig,
    BoxRegressor,
    fit_box_regressors,
    fit_ridge,
    training_pairs,
)
from rcnn_cli.training.targets import encode_targets


def reference_ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """min ‖[X 1][W; bᵀ] − Y‖² + λ‖W‖² as one least-squares problem: rows sqrt(λ)·I under X, and a zero
    under the ones column, so that the bias is not penalized."""
    n, d = x.shape
    a = np.block([[x, np.ones((n, 1))], [math.sqrt(lam) * np.eye(d), np.zeros((d, 1))]])
    rhs = np.vstack([y, np.zeros((d, y.shape[1]))])
    solution = np.linalg.lstsq(a, rhs, rcond=None)[0]
    return solution[:d], solution[d]


@pytest.mark.parametrize(("n", "d"), [(60, 8), (12, 40)], ids=["primal", "dual"])
def test_fit_ridge_matches_least_squares(n, d):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 1.5, (n, d))
    y = rng.normal(0.5, 1.0, (n, 4))
    weight, bias = fit_ridge(x, y, lam=3.0)
    assert weight.dtype == torch.float64 and weight.shape == (d, 4) and bias.shape == (4,)
    ref_w, ref_b = reference_ridge(x, y, 3.0)
    np.testing.assert_allclose(weight.numpy(), ref_w, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(bias.numpy(), ref_b, rtol=1e-9, atol=1e-10)
    # Tensors in, float32 too.
    w32, _ = fit_ridge(torch.from_numpy(x).float(), torch.from_numpy(y).float(), 3.0)
    np.testing.assert_allclose(w32.numpy(), ref_w, rtol=1e-4, atol=1e-5)


def test_fit_ridge_small_lambda_recovers_a_noiseless_linear_map():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (200, 6))
    true_w, true_b = rng.normal(0, 1, (6, 4)), rng.normal(0, 1, 4)
    weight, bias = fit_ridge(x, x @ true_w + true_b, lam=1e-9)
    np.testing.assert_allclose(weight.numpy(), true_w, atol=1e-8)
    np.testing.assert_allclose(bias.numpy(), true_b, atol=1e-8)


def test_fit_ridge_refuses_bad_input():
    with pytest.raises(RcnnError, match="λ > 0"):
        fit_ridge(np.ones((3, 2)), np.ones((3, 4)), 0.0)
    with pytest.raises(RcnnError, match="n >= 1"):
        fit_ridge(np.ones((3, 2)), np.ones((2, 4)), 1.0)
    with pytest.raises(RcnnError, match="non-finite"):
        fit_ridge(np.full((3, 2), np.nan), np.ones((3, 4)), 1.0)
    with pytest.raises(RcnnError, match="--bbox-lambda"):
        BoxRegressionConfig(lam=0.0)
    with pytest.raises(RcnnError, match="--bbox-min-iou"):
        BoxRegressionConfig(min_iou=1.5)


def test_refine_hand_computed_and_no_pair_class_unchanged():
    # Proposal: centre (20, 40), size 20 x 40. Class 0's t = (0.1, -0.25, log 2, 0) gives centre (22, 30),
    # size 40 x 40: [2, 10, 42, 50], clipped to the image's width 40. Class 1 (W = 0, b = 0) keeps it.
    weight = torch.zeros(2, 3, 4)
    weight[0, 0] = torch.tensor([0.1, -0.25, math.log(2.0), 0.0])
    regressor = BoxRegressor(weight, torch.zeros(2, 4))
    proposal = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    features = torch.tensor([[1.0, 0.0, 0.0]])
    torch.testing.assert_close(regressor.deltas(features)[0, 0], weight[0, 0])
    boxes = regressor.refine(features, proposal, height=100, width=40)
    assert boxes.shape == (1, 2, 4)
    torch.testing.assert_close(boxes[0, 0], torch.tensor([2.0, 10.0, 40.0, 50.0]))
    torch.testing.assert_close(boxes[0, 1], proposal[0])


def synthetic_image(
    rng: np.random.Generator, classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """gt boxes (one per class), proposals jittered around them and a few far away, in a 500 x 500 image."""
    xy = rng.uniform(50, 250, (classes, 2))
    gt = torch.tensor(np.hstack([xy, xy + rng.uniform(60, 200, (classes, 2))]), dtype=torch.float32)
    size = (gt[:, 2:] - gt[:, :2]).repeat(1, 2).repeat_interleave(8, 0)
    near = (
        gt.repeat_interleave(8, 0)
        + torch.from_numpy(rng.uniform(-0.06, 0.06, (8 * classes, 4))).float() * size
    )
    far = torch.tensor([[0.0, 0.0, 20.0, 20.0], [470.0, 470.0, 500.0, 500.0]])
    return gt, torch.cat([near, far]), torch.arange(classes)


def test_fit_box_regressors_recovers_gt_from_linear_features():
    rng = np.random.default_rng(3)
    classes = 3  # class 2 gets no training pair
    mixing = torch.from_numpy(rng.normal(0, 1, (classes, 4, 16)))
    xs: list[list[torch.Tensor]] = [[] for _ in range(classes)]
    ps: list[list[torch.Tensor]] = [[] for _ in range(classes)]
    gs: list[list[torch.Tensor]] = [[] for _ in range(classes)]
    for _ in range(6):
        gt, proposals, labels = synthetic_image(rng, classes - 1)
        index, matched, label = training_pairs(proposals, gt, labels, min_iou=0.6)
        assert len(index) == 8 * (classes - 1)  # the jittered ones, not the far ones
        assert (box_iou(proposals[index], matched).diagonal() >= 0.6).all()
        for k in range(classes - 1):
            p, g = proposals[index][label == k], matched[label == k]
            ps[k].append(p)
            gs[k].append(g)
            xs[k].append(encode_targets(p.double(), g.double()) @ mixing[k] + 0.5)
    feats = [torch.cat(x).float() if x else torch.zeros(0, 16) for x in xs]
    props = [torch.cat(p) if p else torch.zeros(0, 4) for p in ps]
    gts = [torch.cat(g) if g else torch.zeros(0, 4) for g in gs]
    regressor = fit_box_regressors(feats, props, gts, BoxRegressionConfig(lam=1e-6))
    assert regressor.weight.shape == (classes, 16, 4) and regressor.weight.dtype == torch.float32
    assert not regressor.weight[2].any() and not regressor.bias[2].any()
    for k in range(classes - 1):
        refined = regressor.refine(feats[k], props[k], height=500, width=500)
        torch.testing.assert_close(refined[:, k], gts[k], atol=1e-2, rtol=0)
        torch.testing.assert_close(refined[:, 2], props[k], atol=1e-3, rtol=0)


def test_fit_box_regressors_refuses_mismatched_sets():
    x = torch.zeros(2, 5)
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 2)
    with pytest.raises(RcnnError, match="same number"):
        fit_box_regressors([x], [boxes, boxes], [boxes], BoxRegressionConfig())
    with pytest.raises(RcnnError, match="one d"):
        fit_box_regressors(
            [x, torch.zeros(0, 6)], [boxes, boxes[:0]], [boxes, boxes[:0]], BoxRegressionConfig()
        )
    with pytest.raises(RcnnError, match="class 0"):
        fit_box_regressors([x], [boxes[:1]], [boxes], BoxRegressionConfig())
