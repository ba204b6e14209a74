"""Distillation after truncated SVD: teach the factorized fc layers to answer as the original model did.

Truncated SVD (paper §3.1) keeps the directions of W with the largest singular values, which is the best
approximation *of the weights*. What detection needs is the best approximation of the head's *outputs*
on the RoIs it will see. On a small head trained from scratch (our 512-wide CPU recipe) the two differ:
at the paper's fractions (fc6 1/4, fc7 1/16 of their widths) the plain factorization loses 3.6 mAP
points on BCCD (docs/BENCHMARKS.md). So, starting from the SVD factors, the factorized layers are
trained for a few thousand small steps to reproduce the original model (the teacher) on RoIs of the
user's own images — knowledge distillation (Hinton et al., 2015) applied to low-rank compression in the
spirit of the data-reconstruction fine-tuning of Jaderberg et al. (2014). No labels are needed:
images and proposals suffice, and everything but the factorized layers stays as it was.

The parts, one file each:

- :mod:`.config`: :class:`DistillConfig`, the calibration and optimization settings;
- :mod:`.calibration`: which images to distill on, read lazily with their proposals;
- :mod:`.bank`: the RoI bank, the teacher's pooled features and outputs on those images' RoIs;
- :mod:`.loss`: the distillation loss and its measure over a bank;
- :mod:`.optimize`: the optimization of the factorized layers (:func:`distill_layers`).

Every function works on the model's :class:`rcnn_cli.models.heads.FastRCNNHead`: the backbone and the
RoI pooling do not change, so the bank is pooled once and each step costs only the fc layers.

The names below are imported on first use, so that the command line can read :class:`DistillConfig`'s
defaults (``.config`` imports no torch) without loading the rest.
"""

from __future__ import annotations

from rcnn_cli.lazy import lazy_names

_HOMES = {
    "DistillConfig": "config",
    "DistillReport": "optimize",
    "RoiBank": "bank",
    "calibration_images": "calibration",
    "collect_rois": "bank",
    "distill_layers": "optimize",
    "distillation_loss": "loss",
    "open_calibration": "calibration",
    "pick_calibration": "calibration",
    "teacher_copy": "optimize",
}

__getattr__, __all__ = lazy_names(__name__, _HOMES)
