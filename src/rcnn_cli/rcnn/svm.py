"""R-CNN's per-class linear SVMs (R-CNN §2.3, appendix B) and their hard negative mining (rcnn_train.m).

Shapes: P positives, N negatives, D feature dimensions (4096 for fc7). Features are float32, already
scaled by :func:`feature_scale` — the SVM's C only means what R-CNN's C = 0.001 meant at that scale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rcnn_cli.errors import RcnnError

# liblinear's outer passes of dual coordinate descent: at C = 1e-3 it reaches `tol` in tens, so the cap
# (10x liblinear's own) only bounds a pathological run, which scikit-learn reports as a ConvergenceWarning.
_MAX_ITER = 10_000


@dataclass(frozen=True)
class SVMConfig:
    """R-CNN's released settings (rcnn_train.m): liblinear -s 3 (L2-regularized L1-loss/hinge, dual),
    -c 0.001, -w1 2, -B 10; cache thresholds from its init_cache.

    ``tol`` is liblinear's -e. R-CNN ran liblinear's default 0.1; 1e-4 (scikit-learn's default) costs
    little at C = 0.001 and makes the model a solution of the SVM problem rather than near one.
    """

    C: float = 0.001
    positive_weight: float = 2.0
    bias_multiplier: float = 10.0  # liblinear's -B: the constant feature appended for the bias
    hard_threshold: float = -1.0001  # a negative scoring above this is hard (inside the margin)
    easy_threshold: float = -1.2  # cached negatives scoring below this are evicted after a retrain
    retrain_limit: int = 2000  # retrain once this many new hard negatives are cached
    max_passes: int = 3  # passes over the images; stop earlier when a pass adds no hard negative
    negative_iou: float = 0.3  # negatives: proposals with IoU < 0.3 with every gt box of the class
    feature_norm: float = 20.0  # features scaled so that their mean L2 norm is 20
    tol: float = 1e-4

    def __post_init__(self) -> None:
        for option, value in (
            ("--svm-c", self.C),
            ("--svm-pos-weight", self.positive_weight),
            ("--svm-bias-mult", self.bias_multiplier),
            ("--feat-norm", self.feature_norm),
            ("--svm-tol", self.tol),
        ):
            if not value > 0:  # `not >` so that NaN is refused too
                raise RcnnError(f"{option} must be > 0, got {value}")
        if not self.easy_threshold < self.hard_threshold:
            raise RcnnError(
                f"--evict-thresh ({self.easy_threshold}) must be below --hard-thresh ({self.hard_threshold}):"
                " otherwise a negative just cached as hard is evicted at once"
            )
        for option, count in (
            ("--retrain-limit", self.retrain_limit),
            ("--hard-negative-passes", self.max_passes),
        ):
            if not count >= 1:
                raise RcnnError(f"{option} must be >= 1, got {count}")
        if not 0 < self.negative_iou <= 1:
            raise RcnnError(f"--neg-iou must be in (0, 1], got {self.negative_iou}")


@dataclass
class LinearSVM:
    """One class's detector: score = w·x + b (> 0: the class; the margin is at ±1)."""

    weight: np.ndarray  # float32 [D]
    bias: float

    def decision(self, features: np.ndarray) -> np.ndarray:
        """Margins ``w·x + b``, float32 [n], of features [n, D]."""
        x = np.asarray(features, dtype=np.float32)
        return (x @ self.weight + np.float32(self.bias)).astype(np.float32, copy=False)


def feature_scale(sample: np.ndarray | Sequence[np.ndarray], target_norm: float = 20.0) -> float:
    """The one scalar s so that s·x has mean L2 norm target_norm over ``sample`` [n, D] (R-CNN's
    feat_norm_mean): one scale for all features, so that C (and λ of box regression) keep their meaning
    whatever the network's activation magnitudes. ``sample`` may come in pieces [n_i, D] (one per
    image or class), so that a large sample is never copied whole into float64."""
    pieces = [sample] if isinstance(sample, np.ndarray) else list(sample)
    norms = []
    for piece in pieces:
        x = np.asarray(piece, dtype=np.float64)
        if x.ndim != 2:
            raise RcnnError(f"feature_scale needs a non-empty [n, D] sample, got shape {x.shape}")
        norms.append(np.linalg.norm(x, axis=1))
    all_norms = np.concatenate(norms) if norms else np.zeros(0)
    if all_norms.size == 0:
        shape = pieces[0].shape if pieces else (0,)
        raise RcnnError(f"feature_scale needs a non-empty [n, D] sample, got shape {shape}")
    mean_norm = float(all_norms.mean())
    if not (np.isfinite(mean_norm) and mean_norm > 0):
        raise RcnnError(f"feature_scale: the sample's mean L2 norm is {mean_norm}, need a finite value > 0")
    return target_norm / mean_norm


def train_linear_svm(positives: np.ndarray, negatives: np.ndarray, config: SVMConfig) -> LinearSVM:
    """Train one class's SVM on positives [P, D] (label +1) against negatives [N, D] (label -1).

    ``sklearn.svm.LinearSVC(loss="hinge", dual=True)`` runs liblinear's solver -s 3, the very solver
    (and library) that R-CNN called from MATLAB, so the problem and its optimum are R-CNN's:
    minimize ½‖[w; w_B]‖² + C·Σ_i c_i·max(0, 1 − y_i(w·x_i + B·w_B)) with c_i = positive_weight for
    positives (-w1) and 1 for negatives. liblinear's -B appends a constant feature B to every x, and its
    weight w_B is regularized like any other, which is exactly LinearSVC's ``intercept_scaling``:
    the bias is b = B·w_B, so a larger B makes the bias cheaper (its penalty is ½(b/B)²) — R-CNN's B = 10.

    Memory: the stacked (P + N) x D examples are copied to float64, and liblinear copies them once more
    to its sparse nodes (16 bytes per non-zero value): up to ~24 bytes per feature value in all.
    """
    from sklearn.svm import LinearSVC

    pos = _features("positives", positives)
    neg = _features("negatives", negatives)
    if pos.shape[1] != neg.shape[1]:
        raise RcnnError(f"positives have {pos.shape[1]} feature dimensions but negatives {neg.shape[1]}")
    x = np.empty((pos.shape[0] + neg.shape[0], pos.shape[1]), dtype=np.float64)
    x[: pos.shape[0]] = pos
    x[pos.shape[0] :] = neg
    y = np.concatenate((np.ones(pos.shape[0], np.int64), -np.ones(neg.shape[0], np.int64)))
    svc = LinearSVC(
        loss="hinge",
        dual=True,
        C=config.C,
        class_weight={1: config.positive_weight, -1: 1.0},
        fit_intercept=True,
        intercept_scaling=config.bias_multiplier,
        tol=config.tol,
        max_iter=_MAX_ITER,
        random_state=0,  # liblinear visits examples in a random order: the same model on every run
    )
    svc.fit(x, y)
    # classes_ is [-1, 1], so the decision is positive for the class.
    return LinearSVM(svc.coef_[0].astype(np.float32), float(svc.intercept_[0]))


def _features(what: str, array: np.ndarray) -> np.ndarray:
    x = np.asarray(array)
    if x.ndim != 2 or x.shape[0] == 0:
        raise RcnnError(f"no {what} to train an SVM on (got an array of shape {x.shape})")
    if not np.isfinite(x).all():
        raise RcnnError(f"{what} contain non-finite feature values (NaN or inf)")
    return x


@dataclass
class MiningStats:
    """What :func:`hard_negative_mining` did: passes run, SVM trainings, the cache's final size, new hard
    negatives cached in each pass, and whether the last pass found none (the model is then optimal for
    all the negatives, not only the cached ones)."""

    passes: int = 0
    retrains: int = 0
    cached_negatives: int = 0
    hard_found_per_pass: list[int] = field(default_factory=list)
    converged: bool = False


def hard_negatives(svm: LinearSVM | None, negatives: np.ndarray, threshold: float) -> np.ndarray:
    """Indices (int64 [h]) of the negatives [n, D] whose score exceeds threshold (all of them when svm is
    None: before the first model every negative is hard, as in R-CNN)."""
    if svm is None:
        return np.arange(len(negatives), dtype=np.int64)
    return np.flatnonzero(svm.decision(negatives) > threshold).astype(np.int64)


def hard_negative_mining(
    positives: np.ndarray,
    negative_sets: Sequence[Callable[[], np.ndarray]],
    config: SVMConfig,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[LinearSVM, MiningStats]:
    """Train one class's SVM on positives [P, D] (float32, scaled) against the hard negatives of images
    whose negatives [n_i, D] each ``negative_sets[i]()`` loads (called once per image per pass).

    rcnn_train.m's loop: image by image, cache the negatives that the current model scores above
    ``hard_threshold`` and that are not cached yet (identity: (image, row)); before any model, an image's
    negatives are all hard and the first model is trained right after the first image that has some.
    Once ``retrain_limit`` new negatives have been cached, retrain on positives + cache and evict cached
    negatives scoring below ``easy_threshold``; retrain at the end of a pass if any were added. A pass
    that caches nothing ran under one fixed model that scores every uncached negative ≤ hard_threshold,
    i.e. outside the margin with zero loss: the model is then the SVM of *all* negatives, and we stop
    (``converged``). Only the cache is ever held in memory. ``progress(pass, image)`` (0-based) is
    called after each image.
    """
    svm: LinearSVM | None = None
    stats = MiningStats()
    chunks: list[np.ndarray] = []  # the cache, as appended: concatenated only when training
    keys: list[np.ndarray] = []  # int64 [m, 2] (image, row) of each cached negative
    cached: dict[int, set[int]] = {}  # image -> its cached rows, for the duplicate check
    added_since_training = 0

    def retrain() -> None:
        nonlocal svm, added_since_training, chunks, keys, cached
        x, k = np.concatenate(chunks), np.concatenate(keys)
        svm = train_linear_svm(positives, x, config)
        keep = svm.decision(x) >= config.easy_threshold
        chunks, keys = [x[keep]], [k[keep]]
        cached = {}
        for image, row in keys[0].tolist():
            cached.setdefault(image, set()).add(row)
        added_since_training = 0
        stats.retrains += 1

    for pass_index in range(config.max_passes):
        found = 0
        for image, load in enumerate(negative_sets):
            negatives = np.asarray(load(), dtype=np.float32)
            if negatives.ndim != 2:
                raise RcnnError(f"image {image}: negatives must be [n, D], got shape {negatives.shape}")
            rows = hard_negatives(svm, negatives, config.hard_threshold)
            seen = cached.get(image, set())
            rows = np.array([r for r in rows.tolist() if r not in seen], dtype=np.int64)
            if len(rows):
                chunks.append(negatives[rows])  # a copy: the image's array can go
                keys.append(np.stack((np.full_like(rows, image), rows), axis=1))
                cached.setdefault(image, set()).update(rows.tolist())
                found += len(rows)
                added_since_training += len(rows)
            if added_since_training and (svm is None or added_since_training >= config.retrain_limit):
                retrain()
            if progress is not None:
                progress(pass_index, image)
        if added_since_training:
            retrain()
        stats.passes += 1
        stats.hard_found_per_pass.append(found)
        if found == 0:
            stats.converged = True
            break
    if svm is None:
        raise RcnnError(f"no negatives to train an SVM on in any of the {len(negative_sets)} images")
    stats.cached_negatives = sum(len(c) for c in chunks)
    return svm, stats
