"""The truncated-SVD trade-off on the user's own model and data (Fast R-CNN §3.1 and Fig. 2):
for each rank setting, fc6+fc7 time, total detection time and mAP, in one table; with distillation
images, each factorized setting a second time with its layers distilled (:mod:`.distill`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.detect import DetectConfig, Detector
from rcnn_cli.inference.distill import DistillConfig, collect_rois, distill_layers
from rcnn_cli.inference.timing import StageTimer
from rcnn_cli.inference.truncated_svd import compress_layers, fraction_ranks
from rcnn_cli.proposals.sources import ProposalSource


def default_rank_settings(model: nn.Module) -> list[dict[str, int]]:
    """No SVD, then fc6/fc7 at 1/2 and 1/8, the paper's 1/4 and 1/16, and 1/8 and 1/32 of their widths."""
    settings: list[dict[str, int]] = [{}]
    for f6, f7 in ((2, 8), (4, 16), (8, 32)):
        settings.append(fraction_ranks(model.head, {"fc6": f6, "fc7": f7}))
    return settings


def original_model_loader(
    model_path: str | Path, class_names: Sequence[str], device: Any = "cpu"
) -> Callable[[], tuple[nn.Module, dict[str, Any]]]:
    """A fresh copy of the model at ``model_path`` per call, for :func:`svd_sweep`; refused when it is
    already compressed (the sweep factorizes the original) or trained for other classes."""
    from rcnn_cli.models import load_checkpoint

    def load() -> tuple[nn.Module, dict[str, Any]]:
        model, meta = load_checkpoint(model_path, device)
        if meta.get("svd_ranks"):
            raise RcnnError(
                f"{model_path}: already compressed ({meta['svd_ranks']}); sweep the original model"
            )
        if tuple(meta["class_names"]) != tuple(class_names):
            raise RcnnError(f"{model_path}: classes {meta['class_names']} differ from the dataset's")
        return model, meta

    return load


def svd_sweep(
    load_model: Callable[[], tuple[nn.Module, dict[str, Any]]],
    records: Sequence[Any],
    proposal_source: ProposalSource,
    evaluate: Callable[[list[dict[str, Any]]], dict[str, float]],
    settings: Sequence[dict[str, int]] | None = None,
    config: DetectConfig = DetectConfig(),
    device: Any = "cpu",
    log: Callable[[str], None] = lambda _m: None,
    passes: int = 3,
    distill_images: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
    distill_config: DistillConfig = DistillConfig(),
) -> list[dict[str, Any]]:
    """One row per rank setting: ranks, fc6+fc7 ms/image, total detect ms/image, and the columns that
    ``evaluate`` returns for the setting's COCO results (e.g. {"mAP": 71.3, "mAP07": 70.2}).

    Images and proposals are read once. Each setting gets its own freshly loaded model and detects one
    image to warm up (first-call allocations). Then ``passes`` rounds go over all images with every
    setting in turn, and each setting keeps its best round: on a shared machine other load only ever
    adds time, and interleaving spreads a busy spell over all settings instead of one.

    ``distill_images`` ((rgb, proposals) pairs, e.g. of the training split): the original model's RoI
    bank is collected on them once, and every factorized setting gets a second row, "+distill".
    """
    from rcnn_cli.data import read_record
    from rcnn_cli.evaluation.coco_format import coco_image_ids, detections_to_coco

    inputs = [(record, read_record(record)) for record in records]
    inputs = [(record, rgb, proposal_source(record, rgb)) for record, rgb in inputs]
    ids = coco_image_ids(r.image_id for r in records)
    if settings is None:
        settings = default_rank_settings(load_model()[0])
    bank = None
    if distill_images is not None:
        teacher, meta = load_model()
        teacher_detector = Detector(teacher, meta["class_names"], config, device, meta.get("config"))
        bank = collect_rois(teacher_detector, distill_images, distill_config, log)
    variants: list[tuple[dict[str, int], bool]] = []  # (ranks, distilled)
    for ranks in settings:
        variants.append((ranks, False))
        if bank is not None and ranks:
            variants.append((ranks, True))
    detectors = []
    for ranks, distilled in variants:
        model, meta = load_model()
        compress_layers(model.head, ranks)
        if distilled and bank is not None:
            distill_layers(model.head, bank, list(ranks), distill_config, log)
        detector = Detector(model, meta["class_names"], config, device, meta.get("config"))
        if inputs:
            detector.detect(inputs[0][1], inputs[0][2])  # warm-up, not timed
        detectors.append(detector)

    best_fc = [float("inf")] * len(variants)
    best_total = [float("inf")] * len(variants)
    results: list[list[dict[str, Any]]] = [[] for _ in variants]
    for round_index in range(max(passes, 1)):
        for i, detector in enumerate(detectors):
            detector.timer = StageTimer(detector.device)
            found: list[dict[str, Any]] = []
            start = time.perf_counter()
            for record, rgb, boxes in inputs:
                dets = detector.detect(rgb, boxes)
                found += detections_to_coco(
                    ids[record.image_id], dets.boxes.cpu().numpy(), dets.scores.cpu(), dets.labels.cpu()
                )
            best_total[i] = min(best_total[i], time.perf_counter() - start)
            best_fc[i] = min(best_fc[i], detector.timer.fc_seconds())
            if round_index == 0:
                results[i] = found
    rows = []
    n = max(len(inputs), 1)
    for i, (ranks, distilled) in enumerate(variants):
        label = ",".join(f"{k}={v}" for k, v in ranks.items()) or "none (original)"
        label += " +distill" if distilled else ""
        metrics = evaluate(results[i])
        row = {
            "svd_ranks": label,
            "fc_ms_per_image": round(1000 * best_fc[i] / n, 2),
            "detect_ms_per_image": round(1000 * best_total[i] / n, 2),
            **metrics,
        }
        rows.append(row)
        log(f"svd sweep: {label}: fc {row['fc_ms_per_image']} ms/img, {metrics}")
    # Cuts relative to the first setting (the original model by default).
    for key, cut in (("fc_ms_per_image", "fc_time_cut_pct"), ("detect_ms_per_image", "detect_time_cut_pct")):
        base = rows[0][key] if rows else 0.0
        for row in rows:
            row[cut] = round(100 * (1 - row[key] / base), 1) if base > 0 else float(np.nan)
    return rows
