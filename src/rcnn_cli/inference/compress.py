"""Compress a checkpoint with truncated SVD and measure what it buys: parameters, error, fc time.
Optionally distill the factorized layers towards the original model (:mod:`rcnn_cli.inference.distill`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.distill import DistillConfig, DistillReport
from rcnn_cli.inference.truncated_svd import (
    PAPER_DIVISORS,
    compress_layers,
    fraction_ranks,
    reconstruction_error,
)


def time_layer(layer: nn.Module, x: torch.Tensor, repeats: int = 5, budget_s: float = 0.3) -> float:
    """Median seconds of ``layer(x)`` after one warm-up (synchronized on CUDA): at least ``repeats`` runs,
    more (up to 50) while within ``budget_s``, so that a tiny layer on a shared machine is not one spike."""

    def once() -> float:
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        layer(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        return time.perf_counter() - start

    with torch.inference_mode():
        once()
        times = [once() for _ in range(repeats)]
        while len(times) < 50 and sum(times) < budget_s:
            times.append(once())
    return sorted(times)[len(times) // 2]


def _in_features(layer: nn.Module) -> int:
    first = layer[0] if isinstance(layer, nn.Sequential) else layer
    return int(first.in_features)


@dataclass(frozen=True)
class CompressResult:
    """One report row per factorized layer, and what distillation did (None without it)."""

    rows: list[dict[str, Any]]
    distill: DistillReport | None


def compress_checkpoint(
    model_path: str | Path,
    output: str | Path,
    ranks: dict[str, int],
    *,
    rois: int = 300,
    device: Any = "cpu",
    repeats: int = 5,
    distill_images: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
    distill_config: DistillConfig = DistillConfig(),
    distill_source: str = "",
    log: Callable[[str], None] = lambda _m: None,
) -> CompressResult:
    """Write ``output``: ``model_path`` with fc layers factorized at ``ranks`` ({layer: t}; empty: the
    paper's fractions of each layer's width, :func:`fraction_ranks`, said through ``log``); distilled
    on ``distill_images`` ((rgb, proposals) pairs) when given, ``distill_source`` saying where they
    came from, for the record.

    fc time is measured per layer on a batch of ``rois`` random inputs (what the head sees for ``rois``
    proposals), before and after, in the same process.
    """
    from rcnn_cli.inference.detect import DetectConfig, Detector
    from rcnn_cli.inference.distill import collect_rois, distill_layers, teacher_copy
    from rcnn_cli.models import load_checkpoint, save_checkpoint

    if Path(output).resolve() == Path(model_path).resolve():
        raise RcnnError(f"{output}: would overwrite the input model; choose another -o")
    model, meta = load_checkpoint(model_path, device)
    method = model.config.method
    if method != "fast_rcnn":  # R-CNN, SPPnet: the SVMs read fc7, which the factorization changes
        log(
            f"note: this {method} model's SVMs were trained on the uncompressed fc7"
            + (
                "; distillation matches the softmax head's outputs, which they do not read"
                if distill_images
                else ""
            )
            + " (its box regressors read pool5, which stays as it was)"
        )
    if not ranks:
        ranks = fraction_ranks(model.head)
        widths = ", ".join(f"{name}={t} (1/{PAPER_DIVISORS[name]})" for name, t in ranks.items())
        log(f"using the paper's ranks, fractions of the layers' widths: {widths}")
    generator = torch.Generator().manual_seed(0)
    head = model.head
    inputs = {
        name: torch.rand(rois, _in_features(getattr(head, name)), generator=generator).to(device)
        for name in ranks
    }
    before = {name: time_layer(getattr(head, name), inputs[name], repeats) for name in ranks}
    teacher = teacher_copy(model) if distill_images is not None else None  # before the SVD changes it
    originals = {name: getattr(head, name) for name in ranks}
    reports = compress_layers(head, ranks)
    report = None
    if distill_images is not None:
        detector = Detector(teacher, meta["class_names"], DetectConfig(), device, meta.get("config"))
        bank = collect_rois(detector, distill_images, distill_config, log)
        log(f"distill: {len(bank)} RoIs from {bank.images} images")
        report = distill_layers(head, bank, list(ranks), distill_config, log)
    after = {name: time_layer(getattr(head, name), inputs[name], repeats) for name in ranks}
    # The saved layers' error: the SVD's, or after distillation that of the distilled factors.
    final_error = {
        r.name: reconstruction_error(originals[r.name], getattr(head, r.name))
        if report is not None
        else r.relative_error
        for r in reports
    }
    errors = {r.name: {"rank": r.rank, "relative_error": final_error[r.name]} for r in reports}
    kept = {k: v for k, v in meta.items() if k not in ("config", "svd_ranks", "distill")}
    extra = {}
    if report is not None:  # what was done, and with what, so that it can be redone
        extra["distill"] = {**report.as_dict(), "on": distill_source, "config": asdict(distill_config)}
    save_checkpoint(output, model.cpu(), {**kept, "compressed_from": str(model_path), "svd": errors, **extra})
    rows = [
        {
            "layer": r.name,
            "shape": f"{r.shape[0]}x{r.shape[1]}",
            "rank": r.rank,
            "params_before": r.params_before,
            "params_after": r.params_after,
            "rel_error": round(final_error[r.name], 5),
            **({"svd_rel_error": round(r.relative_error, 5)} if report is not None else {}),
            "ms_before": round(1000 * before[r.name], 3),
            "ms_after": round(1000 * after[r.name], 3),
            "time_cut_pct": round(100 * (1 - after[r.name] / before[r.name]), 1)
            if before[r.name] > 0
            else 0.0,
        }
        for r in reports
    ]
    return CompressResult(rows, report)
