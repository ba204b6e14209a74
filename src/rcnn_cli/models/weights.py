"""Pretrained weights from a local torchvision-layout state dict (``--weights vgg16.pth``).

ResNet-18/50 (``torchvision.models.resnet18().state_dict()``): ``conv1``, ``bn1``, ``layer1`` …
``layer3`` map onto the backbone, ``layer4`` onto the head's ``stage``; MobileNetV3-Large:
``features.0`` … ``12`` onto the backbone, ``features.13`` … ``16`` onto ``stage.0`` … ``3``. Their
ImageNet classifiers (``fc``, ``classifier``) and BatchNorm's ``num_batches_tracked`` are skipped (our
BatchNorm is frozen).

Keys ``features.N.*`` map onto the backbone's ``features.N.*``; ``classifier.0`` and ``classifier.3``
(the ImageNet fc6 and fc7) onto our ``fc6`` and ``fc7``, as the paper initializes them (§2.2).
``classifier.6`` (the 1000-way ImageNet classifier) is replaced by ``cls_score`` and is skipped.
``load_fc=False`` (``--weights-fc skip``) skips fc6 and fc7 too: only the conv layers are loaded, and
fc6/fc7 train from their random init, as they must when the pooling does not give fc6's 7×7 input
(SPPnet's pyramid gives 50 bins per channel, ImageNet's fc6 takes 49).
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
#: Every ImageNet fc layer: what ``load_fc=False`` skips.
FC_PREFIXES = ("classifier.",)


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


#: ResNet (C4): the stages up to res4 are the backbone; res5 (``layer4``) is the head's ``stage``.
RESNET_TRUNK = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.")
#: The ImageNet classifiers of ResNet (``fc``) and MobileNetV3 (``classifier``): never loaded.
STAGE_SKIPPED = ("fc.", "classifier.")


def _layout(backbone: str) -> str:
    """How ``backbone``'s torchvision keys map: "vgg" (features + classifier), "resnet", "mobilenet"."""
    if backbone.startswith("resnet"):
        return "resnet"
    return "mobilenet" if backbone.startswith("mobilenet") else "vgg"


def _target_name(key: str, layout: str = "vgg") -> str | None:
    if layout == "resnet":
        if key.startswith(RESNET_TRUNK):
            return "backbone." + key
        return "stage." + key.removeprefix("layer4.") if key.startswith("layer4.") else None
    if layout == "mobilenet":
        from rcnn_cli.models.mobilenet import HEAD_START

        index, _, rest = key.removeprefix("features.").partition(".")
        if not key.startswith("features.") or not index.isdigit() or not rest:
            return None
        if int(index) < HEAD_START:
            return "backbone." + key
        return f"stage.{int(index) - HEAD_START}.{rest}"
    if key.startswith("features."):
        return "backbone." + key
    for src, dst in CLASSIFIER_MAP.items():
        if key.startswith(src + "."):
            return dst + key[len(src) :]
    return None


def _skipped(key: str, layout: str, load_fc: bool) -> bool:
    if layout != "vgg":  # frozen BatchNorm keeps no counter
        return key.startswith(STAGE_SKIPPED) or key.endswith(".num_batches_tracked")
    return key.startswith(SKIPPED_PREFIXES) or (not load_fc and key.startswith(FC_PREFIXES))


def _required(name: str, layout: str) -> str | None:
    """The file's key that our state-dict entry ``name`` must come from, or None when it may stay as
    initialized (fc6/fc7 of the VGG-style networks, the detector's own layers)."""
    if layout == "resnet":
        if name.startswith("backbone."):
            return name.removeprefix("backbone.")
        return "layer4." + name.removeprefix("stage.") if name.startswith("stage.") else None
    if layout == "mobilenet":
        from rcnn_cli.models.mobilenet import HEAD_START

        if name.startswith("backbone."):
            return name.removeprefix("backbone.")
        if name.startswith("stage."):
            index, _, rest = name.removeprefix("stage.").partition(".")
            return f"features.{int(index) + HEAD_START}.{rest}"
        return None
    return name.removeprefix("backbone.") if name.startswith("backbone.features.") else None


def _pooling_mismatch(model: FastRCNN, key: str, theirs: torch.Size, ours: torch.Size) -> str | None:
    """Why ``key`` does not fit, when it is an ImageNet fc6 weight that would fit ``model`` but for the
    SPP pyramid: the file's fc6 takes RoI pooling's output_size² bins per channel (7×7 = 49 for VGG16:
    25088 inputs), the {6,3,2,1} pyramid gives 50 (25600)."""
    cfg, channels = model.config, model.backbone.out_channels
    side = cfg.output_size
    if cfg.pool != "spp" or key != "classifier.0.weight" or len(theirs) != 2 or len(ours) != 2:
        return None
    if theirs[0] != ours[0] or theirs[1] != channels * side * side:
        return None
    levels = ",".join(map(str, cfg.levels))
    return (
        f"the ImageNet fc6 ({key}) expects {side}x{side} = {side * side} bins per channel, {theirs[1]} "
        f"inputs, but --pool spp's {{{levels}}} pyramid gives {ours[1] // channels} bins, {ours[1]}: "
        "use --pool roi to start from the ImageNet fc6, or --weights-fc skip to load only the conv "
        "layers and train fc6 and fc7 from scratch"
    )


def load_torchvision_weights(model: FastRCNN, path: str | Path, load_fc: bool = True) -> LoadedWeights:
    """Copy a torchvision-layout state dict into ``model``; refuse the whole file on any mismatch.

    Every backbone parameter must be present with the same shape; ``classifier.0``/``classifier.3``
    are optional (without them fc6/fc7 keep their random init) but must fit when present, unless
    ``load_fc`` is False: then every ``classifier.*`` key is skipped. The error lists every unexpected
    key, missing key and shape mismatch; an fc6 that does not fit the pooling alone gets a line of its
    own saying so and what to do.
    """
    from rcnn_cli.models.specs import SPECS

    path = Path(path)
    source = _read_state_dict(path)
    ours = model.state_dict()
    layout = _layout(model.config.backbone) if SPECS[model.config.backbone].head == "stage" else "vgg"
    problems: list[str] = []
    updates: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    pooling: str | None = None  # the ImageNet fc6 meets SPP pooling: said on its own
    for key, value in source.items():
        if _skipped(key, layout, load_fc):
            skipped.append(key)
            continue
        target = _target_name(key, layout)
        if target is None or target not in ours:
            problems.append(f"unexpected key {key}")
        elif tuple(ours[target].shape) != tuple(value.shape):
            reason = _pooling_mismatch(model, key, value.shape, ours[target].shape)
            if reason is not None:
                pooling = reason
            else:
                problems.append(
                    f"{key}: shape {tuple(value.shape)} in the file, {tuple(ours[target].shape)} in {target}"
                )
        else:
            updates[target] = value
    for name in ours:
        key = _required(name, layout)
        if key is not None and name not in updates and key not in source:
            problems.append(f"missing key {key}")
    if pooling is not None and not problems:
        raise DataError(path, pooling)
    if pooling is not None:
        problems.insert(0, pooling)
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
