"""Compress a checkpoint with truncated SVD and measure what it buys: parameters, error, fc time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rcnn_cli.inference.truncated_svd import compress_layers, parse_ranks


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


def compress_checkpoint(
    model_path: str | Path,
    output: str | Path,
    svd_ranks: str | None,
    svd_rank: int | None,
    *,
    rois: int = 300,
    device: Any = "cpu",
    repeats: int = 5,
) -> list[dict[str, Any]]:
    """Write ``output``: ``model_path`` with fc layers factorized; return one report row per layer.

    fc time is measured per layer on a batch of ``rois`` random inputs (what the head sees for ``rois``
    proposals), before and after, in the same process.
    """
    from rcnn_cli.models import load_checkpoint, save_checkpoint

    model, meta = load_checkpoint(model_path, device)
    ranks = parse_ranks(svd_ranks, svd_rank)
    generator = torch.Generator().manual_seed(0)
    inputs = {
        name: torch.rand(rois, _in_features(getattr(model, name)), generator=generator).to(device)
        for name in ranks
    }
    before = {name: time_layer(getattr(model, name), inputs[name], repeats) for name in ranks}
    reports = compress_layers(model, ranks)
    after = {name: time_layer(getattr(model, name), inputs[name], repeats) for name in ranks}
    errors = {r.name: {"rank": r.rank, "relative_error": r.relative_error} for r in reports}
    kept = {k: v for k, v in meta.items() if k not in ("config", "svd_ranks")}
    save_checkpoint(output, model.cpu(), {**kept, "compressed_from": str(model_path), "svd": errors})
    return [
        {
            "layer": r.name,
            "shape": f"{r.shape[0]}x{r.shape[1]}",
            "rank": r.rank,
            "params_before": r.params_before,
            "params_after": r.params_after,
            "rel_error": round(r.relative_error, 5),
            "ms_before": round(1000 * before[r.name], 3),
            "ms_after": round(1000 * after[r.name], 3),
            "time_cut_pct": round(100 * (1 - after[r.name] / before[r.name]), 1)
            if before[r.name] > 0
            else 0.0,
        }
        for r in reports
    ]
