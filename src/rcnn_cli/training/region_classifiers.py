"""R-CNN's post-hoc stages on the cached region features (:mod:`.region_features`): one linear SVM per
class on fc7 with hard negative mining (R-CNN §2.3 "Object category classifiers"), then one ridge
box regressor per class on pool5 (appendix C). The numerics are :mod:`rcnn_cli.rcnn.svm` and
:mod:`rcnn_cli.rcnn.bbox_regression`; this module reads the cache and keeps the stages resumable.

``RUN/3-svm/``: ``feature_scale.json`` (fc7's scale, computed once), then ``class-NN.npz`` per class
(``weight`` [D7], ``bias``, the mining statistics), written when that class is done, so an
interrupted stage goes on with the next class. ``RUN/4-box-regression/regressors.pt``: ``weight``
[K, D5, 4], ``bias`` [K, 4], ``feature_scale``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.rcnn.bbox_regression import BoxRegressionConfig, fit_box_regressors
from rcnn_cli.rcnn.svm import SVMConfig, feature_scale, hard_negative_mining
from rcnn_cli.training.region_features import RegionFeatures

#: Images whose fc7 rows estimate the feature scale (R-CNN samples its training set likewise).
SCALE_SAMPLE_IMAGES = 50
#: Box-regression pairs kept per class, drawn at random beyond it: pool5 is wide (D5 = 6272 for the
#: small backbone, 9216-25088 for the paper's), and the ridge solution settles long before.
MAX_PAIRS_PER_CLASS = 20000

Log = Callable[[str], None]


def train_svms(
    cache: RegionFeatures,
    num_classes: int,
    out_dir: str | Path,
    config: SVMConfig,
    log: Log = print,
    reporter: Any = None,
    on_class: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[Tensor, Tensor, float]:
    """The K SVMs: (weight Tensor[K, D7], bias Tensor[K], fc7's feature scale). Classes finished by an
    earlier run are read back; ``on_class(k, row)`` hears each class trained now (1-based k)."""
    import time

    from rcnn_cli.artifacts import atomic_save_npz, atomic_write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scale_file = out / "feature_scale.json"
    if scale_file.is_file():
        scale = float(json.loads(scale_file.read_text())["feature_scale"])
    else:
        sample = [cache.load(i, "fc7")[0] for i in cache.image_ids[:SCALE_SAMPLE_IMAGES]]
        scale = feature_scale(sample, config.feature_norm)
        atomic_write_json(scale_file, {"feature_scale": scale, "images": len(sample)})
    positives = _positives(cache, num_classes, scale)
    weights, biases = [], []
    for k in range(1, num_classes + 1):
        path = out / f"class-{k:02d}.npz"
        if not path.is_file():
            started = time.perf_counter()
            sets = [_negatives_loader(cache, image_id, k, scale, config) for image_id in cache.image_ids]
            svm, stats = hard_negative_mining(positives[k - 1], sets, config)
            row = {
                "class": k,
                "positives": len(positives[k - 1]),
                "cached_negatives": stats.cached_negatives,
                "passes": stats.passes,
                "retrains": stats.retrains,
                "converged": stats.converged,
                "seconds": round(time.perf_counter() - started, 3),
            }
            atomic_save_npz(path, weight=svm.weight, bias=np.float64(svm.bias), stats=json.dumps(row))
            if on_class is not None:
                on_class(k, row)
        with np.load(path) as data:
            weights.append(torch.from_numpy(data["weight"].astype(np.float32)))
            biases.append(float(data["bias"]))
        if reporter is not None:
            reporter.advance()
    return torch.stack(weights), torch.tensor(biases, dtype=torch.float32), scale


def _positives(cache: RegionFeatures, num_classes: int, scale: float) -> list[np.ndarray]:
    """Per class, the fc7 of its ground-truth boxes (R-CNN's SVM positives), scaled."""
    found: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    for image_id in cache.image_ids:
        fc7, gt_label = cache.load(image_id, "fc7", "gt_label")
        for k in range(1, num_classes + 1):
            rows = fc7[gt_label == k]
            if len(rows):
                found[k - 1].append(rows * scale)
    dim = int(cache.load(cache.image_ids[0], "fc7")[0].shape[1]) if cache.image_ids else 0
    return [np.concatenate(rows) if rows else np.zeros((0, dim), np.float32) for rows in found]


def _negatives_loader(
    cache: RegionFeatures, image_id: str, k: int, scale: float, config: SVMConfig
) -> Callable[[], np.ndarray]:
    """Loads one image's negatives of class k when mining asks: proposals (not gt rows) whose IoU with
    every gt box of the class is below ``config.negative_iou``."""

    def load() -> np.ndarray:
        fc7, gt_label, class_iou = cache.load(image_id, "fc7", "gt_label", "class_iou")
        negative = (gt_label == 0) & (class_iou[:, k - 1] < config.negative_iou)
        return fc7[negative] * scale

    return load


def train_box_regressors(
    cache: RegionFeatures, num_classes: int, pooled_dim: int, config: BoxRegressionConfig, seed: int = 0
) -> tuple[Tensor, Tensor, float, list[int]]:
    """The K ridge regressors: (weight Tensor[K, D5, 4], bias Tensor[K, 4], pool5's feature scale,
    training pairs per class); D5 = ``pooled_dim``. A class without a pair keeps its proposals' boxes
    (zero weights)."""
    features: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    boxes: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    gts: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    for image_id in cache.image_ids:
        pool5, gt, label, proposal = cache.load(image_id, "reg_pool5", "reg_gt", "reg_label", "reg_boxes")
        for k in range(1, num_classes + 1):
            rows = label == k
            if rows.any():
                features[k - 1].append(pool5[rows])
                boxes[k - 1].append(proposal[rows])
                gts[k - 1].append(gt[rows])
    generator = np.random.default_rng(seed)
    X, P, G = [], [], []
    for k in range(num_classes):
        x = np.concatenate(features[k]) if features[k] else np.zeros((0, 0), np.float32)
        p = np.concatenate(boxes[k]) if boxes[k] else np.zeros((0, 4), np.float32)
        g = np.concatenate(gts[k]) if gts[k] else np.zeros((0, 4), np.float32)
        if len(x) > MAX_PAIRS_PER_CLASS:
            keep = np.sort(generator.choice(len(x), MAX_PAIRS_PER_CLASS, replace=False))
            x, p, g = x[keep], p[keep], g[keep]
        X.append(x)
        P.append(p)
        G.append(g)
    nonempty = [x for x in X if len(x)]
    if not nonempty:
        return torch.zeros(num_classes, pooled_dim, 4), torch.zeros(num_classes, 4), 1.0, [0] * num_classes
    scale = feature_scale(nonempty, config.feature_norm)
    regressor = fit_box_regressors(
        [torch.from_numpy(x * scale if len(x) else np.zeros((0, pooled_dim), np.float32)) for x in X],
        [torch.from_numpy(p) for p in P],
        [torch.from_numpy(g) for g in G],
        config,
    )
    return regressor.weight, regressor.bias, scale, [len(x) for x in X]
