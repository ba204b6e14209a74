"""``checkpoints/last.pt``: everything a run needs to continue bit for bit (``rcnn train --resume``).

A plain dict, read with ``torch.load(weights_only=True)``::

    format_version: 1, iteration, model (state dict), optimizer, scheduler (state dicts),
    target_means, target_stds,
    ranks: [{"order": ImageOrder state, "rng": {"torch", "sampling"[, "cuda"]}} per DDP rank],
    train_config, model_config, run   (the settings sections, compared on resume)
    budget   (only when --budget fitted the schedule: rcnn_cli.training.budget.BudgetFit.to_dict)

Each rank has its own image slice and RNG streams, so each resumes its own. A continuation must have the
run's settings, section by section (:func:`run_settings`): the TrainConfig but what :data:`MAY_CHANGE`,
the ModelConfig (``--fc-dims``, ``--pool``, ``--scales``, ...), and the images and classes trained on and
the layers trained (``--split``, ``--freeze-below``, ``--features``). Otherwise the weights would not fit
(a traceback) or the run would go on with something else than it started with (silently). Checkpoints
written before ``model_config`` and ``run`` existed are compared on what they hold. A schedule fitted to
``--budget`` is compared as it was requested (the ``budget`` section holds both: the same command line
asks for it again) and the continuation keeps the fitted one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rcnn_cli.artifacts import digest_of
from rcnn_cli.errors import ArtifactError
from rcnn_cli.training.config import TrainConfig

RESUME_VERSION = 1
#: What may differ between a run and its continuation: how long it goes on, and how often it saves.
#: ``--budget`` decides the schedule once; a run whose checkpoint holds a fitted schedule keeps it.
MAY_CHANGE = {"train_config": ("iters", "checkpoint_every", "time_limit_s", "budget_s")}
Settings = dict[str, dict[str, Any]]
#: Values renamed since older checkpoints were written, per (section, key): {old: new}. ``adam`` always
#: built AdamW; a run started as ``--optimizer adam`` continues as ``--optimizer adamw``.
RENAMED: dict[tuple[str, str], dict[Any, Any]] = {("train_config", "optimizer"): {"adam": "adamw"}}


def plain(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as JSON-plain values (tuples -> lists) so that it compares equal after a torch.save
    round trip."""
    return json.loads(json.dumps(data, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)))


def plain_config(config: TrainConfig) -> dict[str, Any]:
    """``config`` as a JSON-plain dict (see :func:`plain`)."""
    return plain(config.to_dict())


def run_settings(
    config: TrainConfig,
    model: nn.Module,
    split: str | None,
    image_ids: Sequence[str],
    class_names: Sequence[str],
) -> Settings:
    """The sections a continuation is compared on (module docstring). ``model``: the FastRCNN, its
    ``config`` and which parameters train (frozen layers, ``--features``)."""
    trainable = sum(p.requires_grad for p in model.parameters())
    run = {
        "split": split,
        "images": f"{len(image_ids)} images, digest {digest_of(sorted(image_ids))[:12]}",
        "classes": list(class_names),
        "trainable": f"{trainable} of {len(list(model.parameters()))} parameter tensors",
    }
    return {"train_config": plain_config(config), "model_config": plain(model.config.to_dict()), "run": run}


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


def load_resume_state(path: Path, run_dir: Path, settings: Settings, world_size: int) -> dict[str, Any]:
    """Read ``path`` and check that it continues this run: the same ``settings`` (:func:`run_settings`,
    but :data:`MAY_CHANGE`) and as many processes. Raises ArtifactError naming what differs, then and
    now, in one line."""
    if not path.is_file():
        raise ArtifactError(f"{run_dir}: nothing to resume (no checkpoints/last.pt)")
    from rcnn_cli.artifacts import read_torch_file

    state = read_torch_file(path, "resume checkpoint")
    if not isinstance(state, dict) or not {"model", "optimizer", "scheduler", "ranks"} <= set(state):
        raise ArtifactError(f"{path}: not a resume checkpoint of rcnn train (model, optimizer, ... missing)")
    differs = []
    for section, now in settings.items():
        if section not in state:  # a checkpoint from before the section existed
            continue
        saved, free = _as_requested(state, section), MAY_CHANGE.get(section, ())
        then = {k: _saved_value(section, saved, k) for k in now}
        differs += [
            f"{k}: {then[k]!r} then, {v!r} now" for k, v in now.items() if k not in free and then[k] != v
        ]
    if differs:
        raise ArtifactError(f"{path}: the run was started with other settings ({'; '.join(differs)})")
    if len(state["ranks"]) != world_size:
        raise ArtifactError(f"{path}: saved by {len(state['ranks'])} processes, resumed with {world_size}")
    return state


def _as_requested(state: dict[str, Any], section: str) -> dict[str, Any]:
    """The saved ``section`` as the run's command line asked for it: a schedule fitted to ``--budget``
    (the ``budget`` section) is compared as the schedule it was fitted from, which is what the same
    command line asks for again."""
    saved = state[section]
    fit = state.get("budget")
    if section == "train_config" and isinstance(fit, dict) and isinstance(fit.get("requested"), dict):
        return {**saved, **fit["requested"]}
    return saved


def _saved_value(section: str, saved: dict[str, Any], key: str) -> Any:
    """``saved[key]`` as it is called now; a TrainConfig field the checkpoint lacks was added after it
    was written, and a new option's default is the behaviour from before it (``--cls-target hard``), so
    the run is compared as having had the default."""
    if key in saved:
        return _current_name(section, key, saved[key])
    if section == "train_config":
        return plain_config(TrainConfig()).get(key)
    return None


def _current_name(section: str, key: str, value: Any) -> Any:
    """``value`` as it is called now (:data:`RENAMED`)."""
    renamed = RENAMED.get((section, key), {})
    return renamed.get(value, value) if isinstance(value, str) else value
