"""``checkpoints/last.pt``: everything a run needs to continue bit for bit (``rcnn train --resume``).

A plain dict, read with ``torch.load(weights_only=True)``::

    format_version: 1, iteration, train_config (as saved; compared on resume), model (state dict),
    optimizer, scheduler (state dicts), target_means, target_stds,
    ranks: [{"order": ImageOrder state, "rng": {"torch", "sampling"[, "cuda"]}} per DDP rank]

Each rank has its own image slice and RNG streams, so each resumes its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rcnn_cli.errors import ArtifactError
from rcnn_cli.training.config import TrainConfig

RESUME_VERSION = 1
#: What may differ between a run and its continuation: how long it goes on, and how often it saves.
MAY_CHANGE = ("iters", "checkpoint_every", "time_limit_s")


def plain_config(config: TrainConfig) -> dict[str, Any]:
    """``config`` as a JSON-plain dict (tuples -> lists) so configs compare equal after a torch.save
    round trip."""
    return json.loads(
        json.dumps(config.to_dict(), default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
    )


def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """The RNG streams of this process: torch's global one (dropout), the sampling generator, CUDA's."""
    state = {"torch": torch.get_rng_state(), "sampling": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    generator.set_state(state["sampling"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def save_resume_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (the layout above, without ``format_version``) atomically to ``path``."""
    from rcnn_cli.artifacts import atomic_torch_save

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"format_version": RESUME_VERSION, **state}, path)


def load_resume_state(path: Path, run_dir: Path, config: TrainConfig, world_size: int) -> dict[str, Any]:
    """Read ``path`` and check that it continues this run: the same settings (but :data:`MAY_CHANGE`)
    and as many processes. Raises ArtifactError naming what differs."""
    if not path.is_file():
        raise ArtifactError(f"{run_dir}: nothing to resume (no checkpoints/last.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    saved = state.get("train_config", {})
    now = plain_config(config)
    differs = [k for k in now if k not in MAY_CHANGE and saved.get(k) != now[k]]
    if differs:
        detail = "; ".join(f"{k}: {saved.get(k)!r} then, {now[k]!r} now" for k in differs)
        raise ArtifactError(f"{path}: the run was started with other settings ({detail})")
    if len(state["ranks"]) != world_size:
        raise ArtifactError(f"{path}: saved by {len(state['ranks'])} processes, resumed with {world_size}")
    return state
