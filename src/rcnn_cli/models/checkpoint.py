"""Self-contained model checkpoints (``model.pt``) read with ``torch.load(weights_only=True)``.

The file is a plain dict::

    format_version: 1, kind: "fast_rcnn" | "faster_rcnn" | "rcnn" | "sppnet", class_names: [...],
    config: ModelConfig as dict, svd_ranks: {} or {"fc6": 1024, "fc7": 256},
    state_dict: {name: Tensor}, meta: {...}

A ``faster_rcnn`` checkpoint is a Fast R-CNN one whose config has an ``rpn`` part and whose state dict
has the ``rpn.head.*`` weights too; ``meta["stage"]`` says what was trained ("rpn" for an RPN alone,
whose detection head is untrained: usable for proposals only). ``rcnn`` and ``sppnet`` checkpoints
(config ``method``) hold the fine-tuned network and, as tensors of the state dict, their SVMs and
box regressors (:mod:`rcnn_cli.models.rcnn`).

Box-regression targets are trained normalized (paper §2.3: zero mean, unit variance); the means and
stds are *folded* into ``bbox_pred`` here, so the saved network outputs plain deltas and needs nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.models.fast_rcnn import FastRCNN, ModelConfig
from rcnn_cli.models.faster_rcnn import build_model
from rcnn_cli.models.low_rank import apply_low_rank_structure, svd_ranks_of

FORMAT_VERSION = 1
KIND = "fast_rcnn"
FASTER_KIND = "faster_rcnn"
#: R-CNN and SPPnet models (config.method): the network plus their SVMs and box regressors as buffers.
REGION_KINDS = ("rcnn", "sppnet")


def kind_of(config: ModelConfig) -> str:
    """The checkpoint kind of a model config: its method, or faster_rcnn for a Fast R-CNN with an RPN."""
    if config.method != "fast_rcnn":
        return config.method
    return FASTER_KIND if config.rpn is not None else KIND


def fold_bbox_normalization(
    state_dict: dict[str, Tensor], num_classes: int, means: Tensor | None, stds: Tensor | None
) -> dict[str, Tensor]:
    """bbox_pred trained on (t - mean) / std; return weights that output t directly.

    With y = W x + b predicting normalized targets, t = std ⊙ y + mean = (std ⊙ W) x + (std ⊙ b + mean).
    ``means``/``stds`` broadcast to Tensor[K+1, 4] (per class) or are Tensor[4(K+1)].
    """
    if means is None and stds is None:
        return state_dict
    weight = state_dict["bbox_pred.weight"]
    bias = state_dict["bbox_pred.bias"]
    shape = (num_classes + 1, 4)
    m = torch.zeros(shape) if means is None else torch.as_tensor(means, dtype=torch.float64).expand(shape)
    s = torch.ones(shape) if stds is None else torch.as_tensor(stds, dtype=torch.float64).reshape(-1)
    s = s.reshape(-1, 4).expand(shape) if s.numel() != 4 * shape[0] else s.reshape(shape)
    m = m.reshape(-1, 4).expand(shape) if m.numel() != 4 * shape[0] else m.reshape(shape)
    m = m.reshape(-1).to(weight.device, torch.float64)
    s = s.reshape(-1).to(weight.device, torch.float64)
    out = dict(state_dict)
    out["bbox_pred.weight"] = (weight.double() * s[:, None]).to(weight.dtype)
    out["bbox_pred.bias"] = (bias.double() * s + m).to(bias.dtype)
    return out


def unfold_bbox_normalization(
    state_dict: dict[str, Tensor], num_classes: int, means: Tensor, stds: Tensor
) -> dict[str, Tensor]:
    """The inverse of :func:`fold_bbox_normalization`: weights that output (t - mean) / std again, for
    training to go on from a saved model. ``means``/``stds``: Tensor[K+1, 4]."""
    weight = state_dict["bbox_pred.weight"].double()
    bias = state_dict["bbox_pred.bias"].double()
    m = torch.as_tensor(means, dtype=torch.float64).reshape(num_classes + 1, 4).reshape(-1)
    s = torch.as_tensor(stds, dtype=torch.float64).reshape(num_classes + 1, 4).reshape(-1)
    out = dict(state_dict)
    out["bbox_pred.weight"] = (weight / s[:, None]).to(state_dict["bbox_pred.weight"].dtype)
    out["bbox_pred.bias"] = ((bias - m) / s).to(state_dict["bbox_pred.bias"].dtype)
    return out


def load_parts(
    model: FastRCNN, path: str | Path, normalization: Any, parts: Sequence[str] = ("backbone", "rpn", "head")
) -> list[str]:
    """Initialize ``model`` from the model file ``path`` where the two share a part (``backbone``,
    ``rpn``, ``head``) of the same shapes: the 4-step alternating schedule starts each step from the one
    before. The head's box regressor is given back ``normalization`` (means/stds Tensor[K+1, 4]), which
    the file folded away. Returns the parts loaded; refuses a file that shares none, or whose classes
    differ for the head. ``parts``: the ones to take."""
    loaded, _meta = load_checkpoint(path)
    state = loaded.state_dict()
    if "bbox_pred.weight" in state and loaded.num_classes == model.num_classes:
        state = unfold_bbox_normalization(state, model.num_classes, normalization.means, normalization.stds)
    own = model.state_dict()
    taken: list[str] = []
    head_children = {name for name, _ in model.head.named_children()}
    for part in parts:
        if part == "head":
            keys = [k for k in own if k.split(".", 1)[0] in head_children]
        else:
            keys = [k for k in own if k.startswith(part + ".")]
        if keys and all(k in state and state[k].shape == own[k].shape for k in keys):
            own.update({k: state[k] for k in keys})
            taken.append(part)
    if not taken:
        raise ArtifactError(f"{path}: shares no part ({', '.join(parts)}) with the model to train")
    model.load_state_dict(own)
    return taken


def save_checkpoint(
    path: str | Path,
    model: FastRCNN,
    meta: dict[str, Any],
    target_means: Tensor | None = None,
    target_stds: Tensor | None = None,
) -> None:
    """Write ``model`` atomically to ``path``; ``meta`` must hold ``class_names`` (K strings).

    Pass the box-target normalization used in training as ``target_means``/``target_stds``; it is
    folded into ``bbox_pred`` so the file stands alone. Other ``meta`` keys are kept under ``meta``.
    """
    from rcnn_cli.artifacts import atomic_torch_save

    module = getattr(model, "module", model)  # unwrap DDP
    class_names = list(meta.get("class_names", []))
    if len(class_names) != module.num_classes:
        raise ValueError(f"meta['class_names'] has {len(class_names)} names, the model {module.num_classes}")
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    state = fold_bbox_normalization(state, module.num_classes, target_means, target_stds)
    extra = {k: v for k, v in meta.items() if k != "class_names"}
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "kind": kind_of(module.config),
        "class_names": class_names,
        "config": module.config.to_dict(),
        "svd_ranks": svd_ranks_of(module.head),
        "state_dict": state,
        "meta": extra,
    }
    atomic_torch_save(checkpoint, Path(path))


def load_checkpoint(path: str | Path, device: Any = "cpu") -> tuple[FastRCNN, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns (model in eval mode, meta).

    ``meta`` holds ``class_names``, ``config`` (a :class:`ModelConfig`), ``svd_ranks`` and saved keys.
    Whatever is wrong with the file (unreadable, another kind, a partial config, weights that do not
    fit) is one :class:`ArtifactError` naming it.
    """
    from rcnn_cli.artifacts import read_torch_file

    path = Path(path)
    checkpoint = read_torch_file(path, "model checkpoint")
    try:
        config, ranks = _check_layout(checkpoint)
        model = build_model(config)
        apply_low_rank_structure(model.head, ranks)
        model.load_state_dict(checkpoint["state_dict"])
    except RcnnError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except (RuntimeError, ValueError, TypeError) as exc:  # load_state_dict: missing keys, wrong shapes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"{path}: weights do not fit the stored config ({first[:200]})") from None
    model.to(device).eval()
    meta = dict(checkpoint.get("meta") or {})
    meta.update(class_names=list(checkpoint["class_names"]), config=config, svd_ranks=ranks)
    return model, meta


def _check_layout(checkpoint: Any) -> tuple[ModelConfig, dict[str, int]]:
    """The config and SVD ranks of a checkpoint dict, after checking every part that loading uses."""
    if not isinstance(checkpoint, dict):
        raise RcnnError(f"not a Fast R-CNN checkpoint (holds a {type(checkpoint).__name__}, not a dict)")
    kind = checkpoint.get("kind")
    if kind not in (KIND, FASTER_KIND, *REGION_KINDS):
        raise RcnnError(f"not a Fast R-CNN checkpoint (kind {kind!r})")
    if checkpoint.get("format_version") != FORMAT_VERSION:
        raise RcnnError(
            f"checkpoint format {checkpoint.get('format_version')!r}, this version reads {FORMAT_VERSION}"
        )
    if not isinstance(checkpoint.get("config"), dict):
        raise RcnnError("the checkpoint has no model config")
    config = ModelConfig.from_dict(checkpoint["config"])
    if kind_of(config) != kind:
        raise RcnnError(f"kind {kind!r} does not match its config (a {kind_of(config)} model)")
    names = checkpoint.get("class_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RcnnError("class_names is not a list of names")
    if len(names) != config.num_classes:
        raise RcnnError(f"{len(names)} class names for a model of {config.num_classes} classes")
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RcnnError("state_dict is not a mapping of names to tensors")
    ranks = checkpoint.get("svd_ranks") or {}
    if not isinstance(ranks, dict) or not all(
        isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in ranks.values()
    ):
        raise RcnnError(f"svd_ranks {ranks!r} is not a mapping of layer names to ranks >= 1")
    if not isinstance(checkpoint.get("meta") or {}, dict):
        raise RcnnError("meta is not a mapping")
    return config, dict(ranks)
