"""R-CNN's class-specific bounding-box regression (R-CNN appendix C): ridge regression from a proposal's
pool5 features to the targets t = (tx, ty, tw, th) that move it onto its ground-truth box.

Shapes: n training pairs of one class, d feature dimensions (pool5: 9216 for AlexNet, 25088 for VGG16),
K classes, R proposals of one image. Targets are :class:`rcnn_cli.boxes.BoxCoder`'s raw encoding
(means 0, stds 1): ``((Gx − Px)/Pw, (Gy − Py)/Ph, log(Gw/Pw), log(Gh/Ph))`` with centres and widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.boxes import BoxCoder, box_iou, clip_boxes
from rcnn_cli.errors import RcnnError

#: R-CNN's targets t, unnormalized: the ridge regressors predict them as they are.
RAW_CODER = BoxCoder(means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0))


@dataclass(frozen=True)
class BoxRegressionConfig:
    """R-CNN's released settings (rcnn_train_bbox_regressor.m): λ = 1000, pairs with IoU ≥ 0.6.

    ``feature_norm``: pool5 is scaled to mean L2 norm 20 like the SVM features (:func:`.svm.feature_scale`)
    because λ trades ‖W‖² against a squared error whose size grows with ‖x‖²: λ = 1000 only means
    R-CNN's amount of regularization at R-CNN's feature scale.
    """

    lam: float = 1000.0
    min_iou: float = 0.6
    feature_norm: float = 20.0

    def __post_init__(self) -> None:
        if not self.lam > 0:
            raise RcnnError(f"--bbox-lambda must be > 0, got {self.lam}")
        if not 0 < self.min_iou <= 1:
            raise RcnnError(f"--bbox-min-iou must be in (0, 1], got {self.min_iou}")
        if not self.feature_norm > 0:
            raise RcnnError(f"--feat-norm must be > 0, got {self.feature_norm}")


def fit_ridge(
    features: np.ndarray | Tensor, targets: np.ndarray | Tensor, lam: float
) -> tuple[Tensor, Tensor]:
    """X [n, d], Y [n, m] -> (W [d, m], b [m]), float64, minimizing ‖X W + 1 bᵀ − Y‖² + λ‖W‖².

    The bias is not regularized: R-CNN's code centres Y and appends a ones column to X that λ penalizes
    too; centring X as well and leaving b free (the textbook ridge) makes W independent of where the
    features' origin is. b = ȳ − x̄ W, and ridge runs on the centred (Xc, Yc).

    Primal (Xcᵀ Xc + λI) W = Xcᵀ Yc when d ≤ n; else the dual W = Xcᵀ (Xc Xcᵀ + λI)⁻¹ Yc, the same W
    by the push-through identity, with an n x n system instead of d x d (d = 25088, n = 5000: 200 MB
    instead of 5 GB). Both are symmetric positive definite for λ > 0: Cholesky, never an inverse.
    R-CNN also whitens the centred Y before solving and un-whitens after; ridge is linear in Y with one
    λ for all columns, so that changes no prediction and is left out.
    """
    x = torch.as_tensor(features).to(torch.float64)
    y = torch.as_tensor(targets).to(torch.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise RcnnError(
            f"fit_ridge needs X [n, d] and Y [n, m] with n >= 1, got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if not lam > 0:
        raise RcnnError(f"ridge regression needs λ > 0, got {lam}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise RcnnError("fit_ridge: non-finite values (NaN or inf) in the features or targets")
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    n, d = xc.shape
    if d <= n:
        gram = xc.T @ xc
        gram.diagonal().add_(lam)
        weight = torch.cholesky_solve(xc.T @ yc, torch.linalg.cholesky(gram))
    else:
        kernel = xc @ xc.T
        kernel.diagonal().add_(lam)
        weight = xc.T @ torch.cholesky_solve(yc, torch.linalg.cholesky(kernel))
    return weight, y_mean - x_mean @ weight


def training_pairs(
    proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor, min_iou: float = 0.6
) -> tuple[Tensor, Tensor, Tensor]:
    """One image's regression pairs: proposals [P, 4] whose best-overlapping gt box (of [G, 4], labels
    [G]) has IoU ≥ min_iou. Returns (proposal indices int64 [m], that gt box [m, 4], its label [m]).
    Gt boxes themselves (IoU 1) are pairs too when they are among the proposals, as in R-CNN."""
    if gt_boxes.numel() == 0 or proposals.numel() == 0:
        return torch.zeros(0, dtype=torch.int64), proposals.new_zeros((0, 4)), gt_labels.new_zeros(0)
    best_iou, best_gt = box_iou(proposals, gt_boxes).max(dim=1)
    keep = torch.nonzero(best_iou >= min_iou).flatten()
    return keep, gt_boxes[best_gt[keep]], gt_labels[best_gt[keep]]


@dataclass
class BoxRegressor:
    """K classes' linear regressors: t = xᵀ W_k + b_k."""

    weight: Tensor  # [K, d, 4] float32
    bias: Tensor  # [K, 4] float32

    def deltas(self, features: Tensor) -> Tensor:
        """Raw targets t [R, K, 4] predicted from (scaled) pool5 features [R, d]."""
        k, d, _ = self.weight.shape
        flat = self.weight.permute(1, 0, 2).reshape(d, k * 4)  # one matmul for all classes
        out = features.to(self.weight.dtype) @ flat + self.bias.reshape(1, k * 4)
        return out.reshape(-1, k, 4)

    def refine(self, features: Tensor, proposals: Tensor, height: float, width: float) -> Tensor:
        """Each class's refined boxes [R, K, 4] for proposals [R, 4] of an image height x width,
        clipped to the image."""
        t = self.deltas(features)
        boxes = RAW_CODER.decode(t.reshape(t.shape[0], -1), proposals)
        return clip_boxes(boxes, height, width).reshape(t.shape)


def fit_box_regressors(
    features_by_class: list[Tensor],
    proposals_by_class: list[Tensor],
    gt_by_class: list[Tensor],
    config: BoxRegressionConfig,
) -> BoxRegressor:
    """Fit each class k (index 0..K-1) on its pairs: features [n_k, d] (already scaled to
    ``config.feature_norm``), their proposals [n_k, 4] and matched gt boxes [n_k, 4] (see
    :func:`training_pairs`). A class with no pair (n_k = 0, features still [0, d]) gets W = 0 and b = 0:
    its "refined" boxes are its proposals, unchanged."""
    if not (len(features_by_class) == len(proposals_by_class) == len(gt_by_class)) or not features_by_class:
        raise RcnnError("fit_box_regressors needs the same number (>= 1) of feature, proposal and gt sets")
    dims = {f.shape[1] if f.ndim == 2 else -1 for f in features_by_class}
    if len(dims) != 1 or -1 in dims:
        raise RcnnError(f"every class's features must be [n_k, d] with one d, got {sorted(dims)}")
    d = dims.pop()
    weight = torch.zeros(len(features_by_class), d, 4, dtype=torch.float64)
    bias = torch.zeros(len(features_by_class), 4, dtype=torch.float64)
    for k, (x, p, g) in enumerate(zip(features_by_class, proposals_by_class, gt_by_class, strict=True)):
        if not x.shape[0] == p.shape[0] == g.shape[0]:
            raise RcnnError(
                f"class {k}: {x.shape[0]} feature rows, {p.shape[0]} proposals, {g.shape[0]} gt boxes"
            )
        if x.shape[0] == 0:
            continue
        weight[k], bias[k] = fit_ridge(x, RAW_CODER.encode(p.double(), g.double()), config.lam)
    return BoxRegressor(weight.float(), bias.float())
