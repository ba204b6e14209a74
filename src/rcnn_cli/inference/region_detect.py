"""Detection with an R-CNN or SPPnet model (R-CNN §2.2 "Test-time detection"): the fine-tuned network's
fc7 for every proposal, each class's SVM score, each class's ridge-regressed box, then per-class NMS
at IoU 0.3 (the paper's greedy NMS per class) and the best 100.

R-CNN warps every proposal and runs the conv layers on each (``warp`` and ``conv`` are per region);
SPPnet runs them once and pools each proposal from the map with the spatial pyramid. Scores are the
SVM margins through a logistic, σ(w·x + b): the ranking, and so every AP, is the margin's, and the
detections share the [0, 1] score scale (and the 0.05 threshold, a margin of -2.94) of the other
methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rcnn_cli.inference.postprocess import ImageDetections, select_detections
from rcnn_cli.models.preprocess import normalize_image, prepare_image
from rcnn_cli.models.rcnn import WARP_BATCH
from rcnn_cli.rcnn.warp import warp_regions


def detect_regions(detector: Any, rgb: np.ndarray, boxes: torch.Tensor) -> ImageDetections:
    """rgb uint8 [H, W, 3]; boxes Tensor[R, 4], the cleaned proposals in original pixels (R > 0) ->
    detections, every stage timed into ``detector.timer``."""
    model, timer, device = detector.model, detector.timer, detector.device
    cfg = model.config
    height, width = rgb.shape[:2]
    boxes = boxes.to(device)
    if cfg.method == "rcnn":
        with timer.stage("preprocess"):
            image = normalize_image(rgb, cfg.pixel_mean, cfg.pixel_std).to(device)
        pooled = []
        for start in range(0, len(boxes), WARP_BATCH):
            with timer.stage("warp"):
                windows = warp_regions(
                    image, boxes[start : start + WARP_BATCH], cfg.region_size, cfg.region_padding
                )
            with timer.stage("conv"):
                maps = model.features(windows)
            with timer.stage("roi_pool"):
                pooled.append(model.window_pool5(maps))
        pool5 = torch.cat(pooled)
    elif len(cfg.scales) > 1:  # SPPnet's multi-scale option: each region from its scale's map
        from rcnn_cli.rcnn.scale_assignment import pool_at_assigned_scales

        maps, im_scales = [], []
        for scale in cfg.scales:
            with timer.stage("preprocess"):
                image, im_scale = prepare_image(rgb, scale, cfg.max_size, cfg.pixel_mean, cfg.pixel_std)
            with timer.stage("conv"):
                maps.append(model.features(image[None].to(device)))
            im_scales.append(im_scale)
        with timer.stage("roi_pool"):
            pool5 = pool_at_assigned_scales(model.head.pool, maps, im_scales, boxes)
    else:
        with timer.stage("preprocess"):
            image, rois = detector.network_inputs(rgb, boxes)
        with timer.stage("conv"):
            maps = model.features(image)
        with timer.stage("roi_pool"):
            pool5 = model.head.pool_rois(maps, rois)
    with timer.stage("fc6"):
        x = model.head.fc6(pool5).relu()
    with timer.stage("fc7"):
        fc7 = model.head.fc7(x).relu()
    with timer.stage("svm"):
        scores = model.svm_scores(fc7).sigmoid()
    with timer.stage("bbox_regression"):
        refined = model.refined_boxes(pool5, boxes, height, width)
    with timer.stage("nms"):
        return select_detections(scores, refined, detector.config.postprocess)
