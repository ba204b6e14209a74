"""Pretrained weights from a local torchvision-layout state dict (``--weights vgg16.pth``).

Keys ``features.N.*`` map onto the backbone's ``features.N.*``; ``classifier.0`` and ``classifier.3``
(the ImageNet fc6 and fc7) onto our ``fc6`` and ``fc7``, as the paper initializes them (§2.2).
``classifier.6`` (the 1000-way ImageNet classifier) is replaced by ``cls_score`` and is skipped.
Reading uses ``torch.load(weights_only=True)``: a file can hold only tensors, never code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rcnn_cli.errors import DataError
from rcnn_cli.models.fast_rcnn import FastRCNN

#: torchvision classifier index -> our layer.
CLASSIFIER_MAP = {"classifier.0": "fc6", "classifier.3": "fc7"}
#: The ImageNet classifier (fc8): never loaded, the detector has its own cls_score.
SKIPPED_PREFIXES = ("classifier.6.",)


@dataclass(frozen=True)
class LoadedWeights:
    """What was loaded: names of our parameters that now hold the file's values."""

    loaded: tuple[str, ...]
    skipped: tuple[str, ...]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from rcnn_cli.artifacts import read_torch_file

    obj = read_torch_file(path, "weights file", user_file=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(path, "expected a state dict (a mapping of parameter names to tensors)")
    # Checkpoints saved from DataParallel/DDP prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _target_name(key: str) -> str | None:
    if key.startswith("features."):
        return "backbone." + key
    for src, dst in CLASSIFIER_MAP.items():
        if key.startswith(src + "."):
            return dst + key[len(src) :]
    return None


def load_torchvision_weights(model: FastRCNN, path: str | Path) -> LoadedWeights:
    """Copy a torchvision-layout state dict into ``model``; refuse the whole file on any mismatch.

    Every backbone parameter must be present with the same shape; ``classifier.0``/``classifier.3``
    are optional (without them fc6/fc7 keep their random init) but must fit when present.
    The error lists every unexpected key, missing key and shape mismatch.
    """
    path = Path(path)
    source = _read_state_dict(path)
    ours = model.state_dict()
    problems: list[str] = []
    updates: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for key, value in source.items():
        if key.startswith(SKIPPED_PREFIXES):
            skipped.append(key)
            continue
        target = _target_name(key)
        if target is None or target not in ours:
            problems.append(f"unexpected key {key}")
        elif tuple(ours[target].shape) != tuple(value.shape):
            problems.append(
                f"{key}: shape {tuple(value.shape)} in the file, {tuple(ours[target].shape)} in {target}"
            )
        else:
            updates[target] = value
    for name in ours:
        if name.startswith("backbone.features.") and name not in updates:
            key = name.removeprefix("backbone.")
            if key not in source:
                problems.append(f"missing key {key}")
    if problems:
        shown = "; ".join(problems[:12]) + (f"; ... {len(problems) - 12} more" if len(problems) > 12 else "")
        raise DataError(
            path,
            f"does not fit backbone {model.config.backbone} with pool {model.config.pool}: {shown}",
        )
    with torch.no_grad():
        for target, value in updates.items():
            ours[target].copy_(value.to(ours[target].dtype))
    return LoadedWeights(loaded=tuple(sorted(updates)), skipped=tuple(skipped))
