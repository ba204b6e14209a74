"""R-CNN's and SPPnet's multi-stage training, each stage a folder of the run (the seeds' "multi-stage
pipeline" that Fast R-CNN replaced by one stage):

    RUN/0-conv-features/    SPPnet: the conv maps, once per image (``rcnn extract``'s folder); the conv
                            layers stay fixed (from --weights or --init-from); skipped with --features
    RUN/1-finetune/         the network fine-tuned with the softmax loss only, an ordinary run folder
                            (R-CNN: every layer, on warped windows; SPPnet: the fc layers, on the maps)
    RUN/2-region-features/  fc7 of every training region, pool5 of those for box regression, on disk
    RUN/3-svm/              one linear SVM per class, hard negative mining (resumes class by class)
    RUN/4-box-regression/   the ridge box regressors
    RUN/model.pt            the fine-tuned network with its SVMs and regressors (kind rcnn | sppnet)
    RUN/metrics.jsonl       one row per stage finished: seconds, disk used

A rerun with ``--resume`` keeps what is complete: a fine-tuning stopped half-way continues from its
checkpoint, features resume image by image, the SVMs class by class.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from rcnn_cli.artifacts import folder_bytes
from rcnn_cli.errors import RcnnError
from rcnn_cli.rcnn.bbox_regression import BoxRegressionConfig
from rcnn_cli.rcnn.svm import SVMConfig
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.setup import RunSpec, build_trainer

Log = Callable[[str], None]

CONV, FINETUNE, FEATURES, SVMS, BOXES = (
    "0-conv-features",
    "1-finetune",
    "2-region-features",
    "3-svm",
    "4-box-regression",
)
#: The stages of each method, in order.
STAGES = {"rcnn": (FINETUNE, FEATURES, SVMS, BOXES), "sppnet": (CONV, FINETUNE, FEATURES, SVMS, BOXES)}


@dataclasses.dataclass(frozen=True)
class PostHocConfig:
    """The settings of the stages after fine-tuning (R-CNN's released defaults)."""

    svm: SVMConfig = dataclasses.field(default_factory=SVMConfig)
    boxes: BoxRegressionConfig = dataclasses.field(default_factory=BoxRegressionConfig)


def train_region_method(
    spec: RunSpec,
    config: TrainConfig,
    device: torch.device,
    verbosity: int = 1,
    log: Log = print,
    posthoc: PostHocConfig = PostHocConfig(),
) -> Path:
    """Run ``spec.method``'s stages (module docstring) into ``spec.out_dir``; returns model.pt's path."""
    if spec.method not in STAGES:
        raise RcnnError(f"multi-stage training is for --method rcnn or sppnet, not {spec.method!r}")
    if spec.proposals is None:
        raise RcnnError(f"--method {spec.method} trains on proposals: give --proposals FOLDER")
    if spec.method == "rcnn" and spec.features:  # its conv layers run on each warped region
        raise RcnnError("--method rcnn runs the CNN on every warped region; it cannot read --features")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # its stages write shared folders: one writer
        raise RcnnError(f"--method {spec.method} trains in one process; run it without torchrun")
    out = Path(spec.out_dir)
    finetune = out / FINETUNE
    if (finetune / "checkpoints" / "last.pt").is_file() and not spec.resume:
        raise RcnnError(f"{out}: holds a run already; pass --resume to continue it or choose another -o")
    out.mkdir(parents=True, exist_ok=True)
    stages = _StageLog(out / "metrics.jsonl", log)
    records, class_names = _training_records(spec)
    features = spec.features
    if spec.method == "sppnet" and features is None:
        with stages.timed(CONV) as row:
            features = str(out / CONV)
            done = _extract_conv_features(
                spec, records, len(class_names), features, config.flip, device, verbosity
            )
            row.update(disk_bytes=folder_bytes(Path(features)), skip=not done)
    if not (finetune / "model.pt").is_file():
        with stages.timed(FINETUNE):
            _finetune(spec, config, features, device, verbosity, log)
    return _posthoc_stages(
        spec, config, out, records, class_names, features, device, verbosity, stages, posthoc
    )


def _posthoc_stages(
    spec: RunSpec,
    config: TrainConfig,
    out: Path,
    records: list,
    class_names: tuple[str, ...],
    features: str | None,
    device: torch.device,
    verbosity: int,
    stages: _StageLog,
    posthoc: PostHocConfig,
) -> Path:
    """Stages 2-4 on the fine-tuned network, then the model file."""
    from rcnn_cli.artifacts import atomic_torch_save, digest_of, file_digest, read_torch_file
    from rcnn_cli.models.checkpoint import load_checkpoint, save_checkpoint
    from rcnn_cli.progress import Reporter
    from rcnn_cli.training.features import FeatureSource
    from rcnn_cli.training.proposals_io import load_proposals
    from rcnn_cli.training.region_classifiers import train_box_regressors, train_svms
    from rcnn_cli.training.region_features import RegionFeatures, cache_region_features

    tuned_path = out / FINETUNE / "model.pt"
    model, meta = load_checkpoint(tuned_path, device)
    proposals = load_proposals(spec.proposals, records, config.max_proposals or None)
    records = [r for r in records if r.image_id in proposals]
    params = {"method": spec.method, "model": file_digest(tuned_path), "max_proposals": config.max_proposals}
    conv_source = FeatureSource(features, records) if spec.method == "sppnet" and features else None
    with stages.timed(FEATURES) as row, Reporter(FEATURES, total=len(records), verbosity=verbosity) as r:
        summary = cache_region_features(
            model, records, proposals, out / FEATURES, params, conv_source, device, reporter=r
        )
        row.update(disk_bytes=summary.disk_bytes, regions=summary.regions, skip=not summary.computed)
    stages.log(f"{FEATURES}: {summary.disk_bytes / 2**20:.0f} MB on disk for {summary.images} images")
    cache = RegionFeatures(out / FEATURES, [r.image_id for r in records])
    K = model.num_classes
    # What the SVMs and regressors are trained from and with: a rerun with other settings (or on
    # features of another model) is refused, never mixed with the classes already trained.
    inputs = digest_of([params["model"], *sorted(r.image_id for r in records)])
    _stage_manifest(out / SVMS, "svms", dataclasses.asdict(posthoc.svm), inputs)
    _stage_manifest(out / BOXES, "box_regressors", dataclasses.asdict(posthoc.boxes), inputs)
    trained: list[int] = []

    def on_class(k: int, row: dict[str, Any]) -> None:
        trained.append(k)
        stages.append(f"{SVMS}/class-{k:02d}", row)

    with stages.timed(SVMS) as row, Reporter(SVMS, total=K, verbosity=verbosity, unit="class") as r:
        weight, bias, scale = train_svms(cache, K, out / SVMS, posthoc.svm, stages.log, r, on_class)
        row.update(classes=len(trained), skip=not trained)
    model.set_svms(weight, bias, scale)
    regressors = out / BOXES / "regressors.pt"
    if not regressors.is_file():
        with stages.timed(BOXES) as row:
            w, b, s, pairs = train_box_regressors(cache, K, model.pooled_dim(), posthoc.boxes)
            row["pairs"] = pairs
            atomic_torch_save({"weight": w, "bias": b, "feature_scale": s, "pairs": pairs}, regressors)
    saved = read_torch_file(regressors, "box regressors")
    model.set_box_regressors(saved["weight"], saved["bias"], float(saved["feature_scale"]))
    keep = {k: v for k, v in meta.items() if k not in ("config", "svd_ranks")}
    keep.update(
        method=spec.method,
        stages=[stage for stage in STAGES[spec.method] if stage != CONV or features == str(out / CONV)],
        svm=dataclasses.asdict(posthoc.svm),
        box_regression=dataclasses.asdict(posthoc.boxes),
        class_names=list(class_names),
        stage_seconds=stages.seconds(),
        disk_bytes={FEATURES: summary.disk_bytes},
    )
    final = out / "model.pt"
    save_checkpoint(final, model, keep)
    return final


def _training_records(spec: RunSpec) -> tuple[list, tuple[str, ...]]:
    from rcnn_cli.data import open_dataset
    from rcnn_cli.training.setup import training_records

    dataset = open_dataset(spec.dataset, spec.split, max_pixels=spec.max_pixels, image_root=spec.image_root)
    if not dataset.records or not dataset.class_names:
        raise RcnnError(f"{spec.dataset}: no annotated images to train on")
    return training_records(dataset), tuple(dataset.class_names)


def _extract_conv_features(
    spec: RunSpec,
    records: list,
    num_classes: int,
    folder: str,
    flip: bool,
    device: torch.device,
    verbosity: int,
) -> int:
    """SPPnet's conv maps, once per image, from the conv layers it keeps fixed: ImageNet's
    (``--weights``) or a trained model's (``--init-from``); returns how many images were computed
    (0: all done by an earlier run)."""
    from rcnn_cli.models.checkpoint import load_parts
    from rcnn_cli.models.fast_rcnn import FastRCNN, default_config
    from rcnn_cli.models.weights import load_torchvision_weights
    from rcnn_cli.progress import Reporter
    from rcnn_cli.training.features import extract_features
    from rcnn_cli.training.targets import TargetNormalization

    if not spec.weights and not spec.init_from:
        raise RcnnError(
            "--method sppnet keeps the conv layers fixed: give them trained, with --weights FILE "
            "(ImageNet, torchvision layout) or --init-from MODEL (e.g. a Fast R-CNN run's model.pt)"
        )
    config = default_config(spec.backbone, num_classes, scales=spec.scales, max_size=spec.max_size)
    model = FastRCNN(config)
    if spec.weights:
        load_torchvision_weights(model, spec.weights)
    for path, _parts in spec.init_from:
        load_parts(model, path, TargetNormalization.fixed(num_classes), ("backbone",))
    with Reporter(CONV, total=len(records), verbosity=verbosity) as report:
        return extract_features(model, records, folder, flip=flip, device=device, reporter=report)


def _finetune(
    spec: RunSpec, config: TrainConfig, features: str | None, device: torch.device, verbosity: int, log: Log
) -> None:
    """Stage 1: the softmax over K+1 classes on the method's regions (no box loss: the regressors come
    later), an ordinary run folder that resumes from its checkpoint."""
    from rcnn_cli.progress import Reporter

    folder = Path(spec.out_dir) / FINETUNE
    tuned = dataclasses.replace(
        spec,
        out_dir=str(folder),
        features=features,
        pool="spp" if spec.method == "sppnet" else spec.pool,
        resume=(folder / "checkpoints" / "last.pt").is_file(),
        weights=spec.weights if spec.method == "rcnn" else None,  # SPPnet's are in the features
        init_from=spec.init_from if spec.method == "rcnn" else (),
    )
    trainer = build_trainer(tuned, dataclasses.replace(config, cls_only=True), device, log=log)
    with Reporter(
        FINETUNE, total=trainer.config.iters - trainer.iteration, verbosity=verbosity, unit="it"
    ) as r:
        trainer.reporter = r
        trainer.fit()


def _stage_manifest(folder: Path, kind: str, params: dict[str, Any], inputs: str) -> None:
    """Check ``folder``'s manifest against ``params`` and ``inputs`` (one line naming the differences),
    or write it when the stage starts."""
    from rcnn_cli.artifacts import Manifest, read_manifest, write_manifest

    if (folder / "manifest.json").is_file():
        read_manifest(folder, kind).check_compatible(folder, params, inputs)
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_manifest(folder, Manifest(kind=kind, format_version=1, params=params, inputs_hash=inputs))


class _StageLog:
    """RUN/metrics.jsonl: one row per stage finished (``{"stage", "seconds", ...}``), appended."""

    def __init__(self, path: Path, log: Log) -> None:
        self.path = path
        self.log = log

    def seconds(self) -> dict[str, float]:
        """Seconds per stage over every row so far (a stage resumed by a later run adds up)."""
        total: dict[str, float] = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                row = json.loads(line)
                if "/" not in row["stage"]:
                    total[row["stage"]] = total.get(row["stage"], 0.0) + float(row.get("seconds", 0))
        return total

    def append(self, stage: str, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"stage": stage, **row}) + "\n")

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[dict[str, Any]]:
        """Time the block; its row (the dict it gets, with ``seconds``) is appended when it ends,
        unless the block set ``skip``: nothing left to do, done by an earlier run."""
        row: dict[str, Any] = {}
        started = time.perf_counter()
        yield row
        seconds = time.perf_counter() - started
        if row.pop("skip", False):
            self.log(f"{stage}: done before, kept")
            return
        self.append(stage, {"seconds": round(seconds, 3), **row})
        self.log(f"{stage}: done in {seconds:.1f} s")
