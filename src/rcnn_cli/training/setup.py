"""From command-line choices to a ready Trainer: dataset, proposals, model, weights, freezing.

Kept apart from the CLI so tests and scripts build the same run without Click.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rcnn_cli.data.images import DEFAULT_MAX_PIXELS
from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.models.fast_rcnn import FastRCNN, default_config
from rcnn_cli.models.weights import load_torchvision_weights
from rcnn_cli.training import distributed
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.entries import ImageSource, prepare_entries
from rcnn_cli.training.features import FeatureSource
from rcnn_cli.training.proposals_io import load_proposals
from rcnn_cli.training.trainer import Trainer

#: CPU recipe for the small backbone (from scratch), used when --iters/--lr/... are not given.
SMALL_RECIPE = {"iters": 3000, "lr": 0.01, "lr_steps": (2250,), "warmup_iters": 100}


@dataclass(frozen=True)
class RunSpec:
    """What ``rcnn train`` was asked for (model side); the optimization side is a TrainConfig."""

    dataset: str
    split: str | None
    proposals: str
    out_dir: str
    backbone: str = "small"
    pool: str = "roi"
    weights: str | None = None
    freeze_below: str | None = "default"
    features: str | None = None
    scales: tuple[int, ...] | None = None
    max_size: int | None = None
    fc_dims: tuple[int, int] | None = None
    resume: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS


def training_records(dataset) -> list:
    """Records for training: difficult objects left out of the gt (as the original VOC setup)."""
    out = []
    for r in dataset.records:
        keep = ~r.difficult
        out.append(
            dataclasses.replace(r, boxes=r.boxes[keep], labels=r.labels[keep], difficult=r.difficult[keep])
        )
    return out


def build_trainer(
    spec: RunSpec, config: TrainConfig, device: torch.device, reporter: Any = None, log=print
) -> Trainer:
    from rcnn_cli.data import open_dataset

    info, device = distributed.init_distributed(device)
    dataset = open_dataset(spec.dataset, spec.split, max_pixels=spec.max_pixels)
    for problem in dataset.problems:
        log(f"skipped: {problem}")
    if not dataset.records:
        raise RcnnError(f"{spec.dataset}: no images in split {spec.split!r}")
    if not dataset.class_names:
        raise RcnnError(f"{spec.dataset}: no object classes; training needs annotated images")
    records = training_records(dataset)
    proposals = load_proposals(spec.proposals, records, config.max_proposals)
    out = Path(spec.out_dir)
    if (out / "checkpoints" / "last.pt").is_file() and not spec.resume:
        raise ArtifactError(f"{out}: holds a run already; pass --resume to continue it or choose another -o")

    source: Any
    overrides: dict[str, Any] = {"pool": spec.pool}
    if spec.fc_dims:
        overrides.update(fc6_dim=spec.fc_dims[0], fc7_dim=spec.fc_dims[1])
    if spec.features:
        source = FeatureSource(spec.features, records)
        if source.params["backbone"] != spec.backbone:
            raise RcnnError(
                f"--features {spec.features} holds {source.params['backbone']} maps, "
                f"not --backbone {spec.backbone}"
            )
        overrides.update(
            scales=source.scales,
            max_size=source.max_size,
            pixel_mean=tuple(source.params["pixel_mean"]),
            pixel_std=tuple(source.params["pixel_std"]),
        )
        if config.flip and not source.has_flips:
            log("note: the features were extracted without flips; training without flipping")
            config = dataclasses.replace(config, flip=False)
    else:
        overrides.update(scales=spec.scales, max_size=spec.max_size)
    model_config = default_config(spec.backbone, dataset.num_classes, **overrides)
    torch.manual_seed(config.seed)  # the same seed gives the same initial weights
    model = FastRCNN(model_config)
    if spec.weights:
        loaded = load_torchvision_weights(model, spec.weights)
        log(f"loaded {len(loaded.loaded)} tensors from {spec.weights}")
    if spec.features:
        model.backbone.load_state_dict(source.backbone_state())
        model.backbone.freeze_below(None)
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    else:
        layer = model.backbone.spec.frozen_below if spec.freeze_below == "default" else spec.freeze_below
        model.backbone.freeze_below(layer)
        source = ImageSource(
            model_config.scales, model_config.max_size, model_config.pixel_mean, model_config.pixel_std
        )
    entries = prepare_entries(records, proposals)
    meta = {"dataset": str(spec.dataset), "split": spec.split, "proposals": str(spec.proposals)}
    trainer = Trainer(
        model, entries, dataset.class_names, config, out, source, device, info, reporter=reporter, meta=meta
    )
    if spec.resume:
        trainer.resume()
    return trainer
