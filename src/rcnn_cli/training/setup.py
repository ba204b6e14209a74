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
from rcnn_cli.models.checkpoint import load_parts
from rcnn_cli.models.fast_rcnn import ModelConfig, default_config
from rcnn_cli.models.faster_rcnn import build_model, with_rpn
from rcnn_cli.models.specs import DEFAULT_BACKBONE, PoolKind
from rcnn_cli.models.weights import load_torchvision_weights
from rcnn_cli.rpn.anchors import AnchorConfig, anchor_coverage, auto_anchor_scales
from rcnn_cli.rpn.proposal_layer import ProposalLayerConfig
from rcnn_cli.training import distributed
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.entries import ImageSource, prepare_entries
from rcnn_cli.training.features import FeatureSource
from rcnn_cli.training.proposals_io import load_proposals
from rcnn_cli.training.targets import TargetNormalization
from rcnn_cli.training.trainer import Trainer

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunSpec:
    """What ``rcnn train`` was asked for (model side); the optimization side is a TrainConfig."""

    dataset: str
    split: str | None
    proposals: str | None
    out_dir: str
    backbone: str = DEFAULT_BACKBONE
    pool: PoolKind = "roi"
    weights: str | None = None
    #: False (``--weights-fc skip``): only the conv layers of ``weights``; fc6 and fc7 train from scratch
    weights_fc: bool = True
    freeze_below: str | None = "default"
    features: str | None = None
    scales: tuple[int, ...] | None = None
    max_size: int | None = None
    fc_dims: tuple[int, int] | None = None
    resume: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    image_root: str | Path | None = None  # a COCO JSON's image folder (None: the JSON's default)
    rpn: RPNSpec | None = None
    #: (model file, its parts to load) to start from, in this order (the alternating schedule's steps)
    init_from: tuple[tuple[str, tuple[str, ...]], ...] = ()
    frozen_parts: tuple[str, ...] = ()
    #: how the model reads its regions (ModelConfig.method); rcnn: warped windows of this size and
    #: context (0 / -1: the backbone's defaults)
    method: str = "fast_rcnn"
    warp_size: int = 0
    context_padding: int = -1
    #: RoI pooling's output side (None: the backbone's: 7, 14 for ResNet's C4 head, 6 for S and M)
    output_size: int | None = None


#: Below this share of training boxes with an anchor at IoU >= 0.5, training says so (BCCD: 97% with
#: the small backbone's anchors; the raccoon photos: 8%, where auto's scales reach 92%).
COVERAGE_NOTE = 0.5

#: The parts of a Faster R-CNN that ``frozen_parts`` may name (the alternating schedule fixes some).
PARTS: tuple[str, ...] = ("backbone", "rpn", "head")


@dataclass(frozen=True)
class RPNSpec:
    """The region proposal network of the model to train (None fields: the backbone's defaults).

    ``anchor_scales`` "auto" fits them to the training boxes
    (:func:`rcnn_cli.rpn.anchors.auto_anchor_scales`);
    ``test_proposals``: the proposal layer the saved model uses at test time.
    """

    anchor_scales: tuple[float, ...] | str | None = None
    anchor_ratios: tuple[float, ...] | None = None
    mid_channels: int | None = None
    test_proposals: ProposalLayerConfig | None = None


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
    dataset = open_dataset(spec.dataset, spec.split, max_pixels=spec.max_pixels, image_root=spec.image_root)
    report_dropped(dataset, spec, log)
    if not dataset.records:
        where = f" in split {spec.split}" if spec.split else ""
        raise RcnnError(f"{spec.dataset}: no images to train on{where} (see above)")
    if not dataset.class_names:
        raise RcnnError(f"{spec.dataset}: no object classes; training needs annotated images")
    records = training_records(dataset)
    _check_inputs(spec, config)
    if spec.proposals is not None:
        proposals = load_proposals(
            spec.proposals,
            records,
            config.max_proposals or None,
            on_skip=lambda _record, reason: log(f"skipped: {reason}"),  # the line propose printed
        )
        records = [r for r in records if r.image_id in proposals]  # without those propose skipped
        if not records:
            raise RcnnError(
                f"{spec.proposals}: rcnn propose skipped every image of {spec.dataset} (see above)"
            )
    else:  # the RPN proposes as it trains: the candidates are the gt boxes only
        proposals = {r.image_id: torch.zeros((0, 4)) for r in records}
    out = Path(spec.out_dir)
    if (out / "checkpoints" / "last.pt").is_file() and not spec.resume:
        raise ArtifactError(f"{out}: holds a run already; pass --resume to continue it or choose another -o")

    source: Any
    overrides: dict[str, Any] = {"pool": spec.pool, "method": spec.method}
    if spec.method == "rcnn":
        overrides.update(warp_size=spec.warp_size, context_padding=spec.context_padding)
    if spec.fc_dims:
        overrides.update(fc6_dim=spec.fc_dims[0], fc7_dim=spec.fc_dims[1])
    if spec.output_size is not None:
        overrides.update(output_size=spec.output_size)
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
        if config.color_jitter > 0:  # the pixels were consumed when the maps were extracted
            log("note: --color-jitter does not apply to cached features; training without it")
            config = dataclasses.replace(config, color_jitter=0.0)
    else:
        overrides.update(scales=spec.scales, max_size=spec.max_size)
    model_config = default_config(spec.backbone, dataset.num_classes, **overrides)
    if spec.rpn is not None:
        model_config = _with_rpn(model_config, spec.rpn, records, spec.resume, log)
    torch.manual_seed(config.seed)  # the same seed gives the same initial weights
    model = build_model(model_config)
    if spec.weights:
        loaded = load_torchvision_weights(model, spec.weights, load_fc=spec.weights_fc)
        log(f"loaded {len(loaded.loaded)} tensors from {spec.weights}")
    for path, wanted in spec.init_from:  # bbox_pred normalized as RPN training does ("fixed")
        parts = load_parts(model, path, TargetNormalization.fixed(model.num_classes), wanted)
        log(f"initialized {', '.join(parts)} from {path}")
    if spec.features:
        model.backbone.load_state_dict(source.backbone_state())
        model.backbone.freeze_below(None)
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    else:
        layer = model.backbone.spec.frozen_below if spec.freeze_below == "default" else spec.freeze_below
        model.backbone.freeze_below(layer)
    frozen = set(spec.frozen_parts) | ({"head"} if config.stage == "rpn" else set())
    if config.stage == "fast_rcnn" and model_config.rpn is not None:
        frozen.add("rpn")  # Fast R-CNN on proposals from a folder: the loss does not reach the RPN
    for part in sorted(frozen):  # DDP must not wait for gradients of what the loss does not reach
        module = getattr(model, part, None)
        if module is None:
            raise RcnnError(f"cannot freeze the {part}: the model has none")
        for p in module.parameters():
            p.requires_grad_(False)
    if spec.method == "rcnn":  # each window is warped from the image at its original size
        from rcnn_cli.training.warp_step import WarpSource

        source = WarpSource(model_config.scales, model_config.pixel_mean, model_config.pixel_std)
    elif not spec.features:
        source = ImageSource(
            model_config.scales, model_config.max_size, model_config.pixel_mean, model_config.pixel_std
        )
    entries = prepare_entries(records, proposals)
    meta = {
        "dataset": str(spec.dataset),
        "split": spec.split,
        "proposals": str(spec.proposals) if spec.proposals is not None else "rpn",
    }
    trainer = Trainer(
        model, entries, dataset.class_names, config, out, source, device, info, reporter=reporter, meta=meta
    )
    if spec.resume:
        trainer.resume()
    return trainer


def _check_inputs(spec: RunSpec, config: TrainConfig) -> None:
    """Where the RoIs come from must fit what is trained: a folder for Fast R-CNN, the RPN else."""
    bad = [p for p in spec.frozen_parts if p not in PARTS]
    if bad:
        raise RcnnError(f"frozen parts must be among {', '.join(PARTS)}; got {', '.join(bad)}")
    if config.stage == "fast_rcnn":
        if spec.proposals is None:
            raise RcnnError("give --proposals FOLDER (from rcnn propose), or --rpn to train Faster R-CNN")
        return
    flag = "--rpn-only" if config.stage == "rpn" else "--rpn"
    if spec.proposals is not None:
        raise RcnnError(f"{flag} trains on the RPN's own proposals; leave out --proposals {spec.proposals}")
    if spec.features:
        raise RcnnError(f"{flag} trains the conv layers with the RPN; it cannot read --features")
    if spec.rpn is None:
        raise RcnnError(f"{flag} needs the RPN's settings (RunSpec.rpn)")


def _with_rpn(config: ModelConfig, rpn: RPNSpec, records: list, resume: bool, log: Log) -> ModelConfig:
    """``config`` with the region proposal network ``rpn`` asks for. When the run begins, it says how
    well the anchors fit the training boxes if they fit badly (or were fitted by ``auto``)."""
    from rcnn_cli.models.preprocess import image_scale_factor
    from rcnn_cli.models.specs import SPECS

    boxes, sizes, labels = [], [], []
    for r in records:  # the training boxes in pixels of the image the anchors live in
        factor = image_scale_factor(r.height, r.width, config.scales[0], config.max_size)
        boxes.append(torch.from_numpy(r.boxes).reshape(-1, 4).float() * factor)
        sizes.append((round(r.height * factor), round(r.width * factor)))
        labels.append(torch.from_numpy(r.labels).reshape(-1))
    stride = SPECS[config.backbone].stride
    default = AnchorConfig.for_backbone(config.backbone)
    ratios = tuple(rpn.anchor_ratios) if rpn.anchor_ratios else default.ratios

    def fitted() -> tuple[AnchorConfig, str]:
        wh = torch.cat([b[:, 2:] - b[:, :2] for b in boxes]) if boxes else torch.zeros((0, 2))
        scales, reason = auto_anchor_scales(wh, labels=torch.cat(labels) if labels else None)
        return AnchorConfig(scales, ratios), reason

    if rpn.anchor_scales == "auto":
        anchors, reason = fitted()
        if not resume:  # said when the run began; a continuation shows it in the checkpoint's config
            share = anchor_coverage(boxes, sizes, stride, anchors)
            log(f"--anchor-scales auto: {reason}; {share:.0%} of them have an anchor at IoU >= 0.5")
    elif isinstance(rpn.anchor_scales, str):
        raise RcnnError(f"--anchor-scales {rpn.anchor_scales!r}: give numbers or 'auto'")
    else:
        anchors = AnchorConfig(tuple(rpn.anchor_scales or default.scales), ratios)
        share = anchor_coverage(boxes, sizes, stride, anchors) if not resume else 1.0
        if share < COVERAGE_NOTE:
            better, _reason = fitted()
            shown = ",".join(f"{v:g}" for v in anchors.scales)
            log(
                f"note: only {share:.0%} of the training boxes have an anchor at IoU >= 0.5 with "
                f"--anchor-scales {shown}; --anchor-scales auto would choose "
                f"{','.join(f'{v:g}' for v in better.scales)} "
                f"({anchor_coverage(boxes, sizes, stride, better):.0%})"
            )
    return with_rpn(config, anchors=anchors, mid_channels=rpn.mid_channels, proposals=rpn.test_proposals)
