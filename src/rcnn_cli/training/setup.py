"""From command-line choices to a ready Trainer: dataset, proposals, model, weights, freezing.

Kept apart from the CLI so tests and scripts build the same run without Click.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rcnn_cli.data.images import DEFAULT_MAX_PIXELS
from rcnn_cli.data.records import Dataset
from rcnn_cli.data.validate import check_records
from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.models.fast_rcnn import FastRCNN, default_config
from rcnn_cli.models.specs import PoolKind
from rcnn_cli.models.weights import load_torchvision_weights
from rcnn_cli.training import distributed
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.entries import ImageSource, prepare_entries
from rcnn_cli.training.features import FeatureSource
from rcnn_cli.training.proposals_io import load_proposals
from rcnn_cli.training.trainer import Trainer

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunSpec:
    """What ``rcnn train`` was asked for (model side); the optimization side is a TrainConfig."""

    dataset: str
    split: str | None
    proposals: str
    out_dir: str
    backbone: str = "small"
    pool: PoolKind = "roi"
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


def report_dropped(dataset: Dataset, spec: RunSpec, log: Log) -> None:
    """Say what loading dropped (bad boxes, bad images), as ``rcnn check`` sums it up, and how to see
    each one; nothing when nothing was dropped."""
    report = check_records(dataset, decode=False)  # the images are decoded as they are trained on
    if report.ok:
        return
    for line in report.summary_lines(first_cases=True):
        log(line)
    command = ["rcnn", "check", str(spec.dataset), *(["--split", spec.split] if spec.split else [])]
    log(f"  left out of training; each one with its file: {shlex.join(command)}")


def _silent(_message: str) -> None:
    """The log of the processes other than rank 0."""


def build_trainer(
    spec: RunSpec, config: TrainConfig, device: torch.device, reporter: Any = None, log: Log = print
) -> Trainer:
    """The Trainer of ``spec`` and ``config``, every input checked; ``log`` hears what the run leaves out
    (the data check's summary, images that ``rcnn propose`` skipped) and other notes."""
    from rcnn_cli.data import open_dataset

    info, device = distributed.init_distributed(device)
    if not info.is_main:  # one copy of each message, not one per process
        log = _silent
    dataset = open_dataset(spec.dataset, spec.split, max_pixels=spec.max_pixels)
    report_dropped(dataset, spec, log)
    if not dataset.records:
        where = f" in split {spec.split}" if spec.split else ""
        raise RcnnError(f"{spec.dataset}: no images to train on{where} (see above)")
    if not dataset.class_names:
        raise RcnnError(f"{spec.dataset}: no object classes; training needs annotated images")
    records = training_records(dataset)
    proposals = load_proposals(
        spec.proposals,
        records,
        config.max_proposals or None,
        on_skip=lambda _record, reason: log(f"skipped: {reason}"),  # the line propose printed
    )
    records = [r for r in records if r.image_id in proposals]  # without those propose skipped
    if not records:
        raise RcnnError(f"{spec.proposals}: rcnn propose skipped every image of {spec.dataset} (see above)")
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
