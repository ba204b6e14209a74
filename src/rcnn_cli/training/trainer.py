"""The Fast R-CNN training loop (paper §2.3): SGD on minibatches of N images × R/N RoIs.

One iteration: plan the minibatch (hierarchical or region-wise sampling), then for each image run the conv
layers once, pool its RoIs, apply the multi-task loss and backpropagate (gradients accumulate over the
images, so memory holds one image at a time), then one optimizer step. Everything random draws from
seeded generators whose state goes into the checkpoint, so ``--resume`` continues bit for bit.

Files in the run folder: ``checkpoints/last.pt`` (model, optimizer, scheduler, RNG states; atomic),
``metrics.jsonl`` (one line per iteration), ``model.pt`` (self-contained, box normalization folded).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rcnn_cli.boxes import flip_boxes
from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.models.checkpoint import save_checkpoint
from rcnn_cli.models.fast_rcnn import FastRCNN
from rcnn_cli.training import distributed
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.entries import ImageEntry, ImageSource, target_normalization
from rcnn_cli.training.sampling import (
    ImageOrder,
    MinibatchPlan,
    hierarchical_sampling,
    region_wise_sampling,
    sample_rois,
)
from rcnn_cli.training.solver import lr_lambda, make_optimizer
from rcnn_cli.training.targets import TargetNormalization, encode_targets

RESUME_VERSION = 1


class _Step(nn.Module):
    """What DDP wraps: the model from images, or only its head from cached features."""

    def __init__(self, model: FastRCNN, from_features: bool) -> None:
        super().__init__()
        self.model = model
        self.from_features = from_features

    def forward(self, inputs: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        if self.from_features:
            return self.model.head(inputs, rois)
        return self.model(inputs, rois)


@dataclass
class TrainResult:
    iterations: int
    history: list[dict[str, Any]]
    normalization: TargetNormalization
    seen_images: list[list[str]]  # image ids of this rank per iteration


class Trainer:
    """Trains ``model`` on ``entries``; writes into ``out_dir`` (rank 0 only)."""

    def __init__(
        self,
        model: FastRCNN,
        entries: list[ImageEntry],
        class_names: tuple[str, ...],
        config: TrainConfig,
        out_dir: str | Path,
        source: ImageSource,
        device: torch.device | str = "cpu",
        dist_info: distributed.DistInfo | None = None,
        reporter: Any = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        if not entries:
            raise RcnnError("no training images")
        self.model = model
        self.entries = entries
        self.class_names = tuple(class_names)
        self.config = config
        self.out_dir = Path(out_dir)
        self.source = source
        self.device = torch.device(device)
        self.info = dist_info or distributed.DistInfo()
        self.reporter = reporter
        self.meta = dict(meta or {})
        self.normalization = target_normalization(entries, model.num_classes, config)
        self.model.to(self.device)
        self.step_module = distributed.wrap(
            _Step(model, source.uses_features), self.info, self.device, find_unused=config.cls_only
        )
        self.optimizer = make_optimizer(model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(config))
        self.order = ImageOrder(len(entries), config.seed, self.info.rank, self.info.world_size)
        self.generator = torch.Generator().manual_seed(config.seed * 1000 + 1 + self.info.rank)
        torch.manual_seed(config.seed * 1000 + 7 + self.info.rank)  # dropout
        self.iteration = 0
        self.scaler = torch.amp.GradScaler("cuda") if config.amp and self.device.type == "cuda" else None

    # ----- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoints" / "last.pt"

    def _rng_state(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state(), "sampling": self.generator.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def save_resume_checkpoint(self) -> None:
        from rcnn_cli.artifacts import atomic_torch_save

        # Each rank has its own image slice and RNG streams: gather them so every rank resumes its own.
        local = {"order": self.order.state_dict(), "rng": self._rng_state()}
        ranks = distributed.gather_objects(local, self.info)
        state = {
            "format_version": RESUME_VERSION,
            "iteration": self.iteration,
            "train_config": _plain(self.config.to_dict()),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ranks": ranks,
            "target_means": self.normalization.means,
            "target_stds": self.normalization.stds,
        }
        if self.info.is_main:
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_torch_save(state, self.checkpoint_path)

    def resume(self) -> None:
        """Load ``checkpoints/last.pt``: weights, optimizer, schedule, sampling order and RNG states."""
        path = self.checkpoint_path
        if not path.is_file():
            raise ArtifactError(f"{self.out_dir}: nothing to resume (no checkpoints/last.pt)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ArtifactError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
        saved = state.get("train_config", {})
        now = _plain(self.config.to_dict())
        differs = [
            k
            for k in now
            if k not in ("iters", "checkpoint_every", "time_limit_s") and saved.get(k) != now[k]
        ]
        if differs:
            detail = "; ".join(f"{k}: {saved.get(k)!r} then, {now[k]!r} now" for k in differs)
            raise ArtifactError(f"{path}: the run was started with other settings ({detail})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ranks = state["ranks"]
        if len(ranks) != self.info.world_size:
            raise ArtifactError(
                f"{path}: saved by {len(ranks)} processes, resumed with {self.info.world_size}"
            )
        mine = ranks[self.info.rank]
        self.order.load_state_dict(mine["order"])
        torch.set_rng_state(mine["rng"]["torch"])
        self.generator.set_state(mine["rng"]["sampling"])
        if "cuda" in mine["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine["rng"]["cuda"], self.device)
        self.normalization = TargetNormalization(state["target_means"], state["target_stds"])
        self.iteration = int(state["iteration"])
        self._truncate_metrics(self.iteration)

    # ----- metrics ------------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    def _truncate_metrics(self, upto: int) -> None:
        """Drop lines written after the checkpoint we resume from, so the file reads as one run."""
        if not self.info.is_main or not self.metrics_path.is_file():
            return
        lines = [ln for ln in self.metrics_path.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if json.loads(ln).get("iter", 0) <= upto]
        self.metrics_path.write_text("".join(ln + "\n" for ln in kept))

    # ----- one minibatch ------------------------------------------------------------------------
    def _plan(self) -> MinibatchPlan:
        s = self.config.sampling
        if self.config.sampler == "region":
            return region_wise_sampling(self.order, s.rois_per_batch)
        return hierarchical_sampling(self.order, s.images_per_batch, s.rois_per_batch)  # TrainConfig checks

    def _sample_image(self, entry: ImageEntry, count: int) -> dict[str, Any]:
        """RoIs, labels u and normalized targets v for one image, flipped with probability 0.5."""
        g = self.generator
        scales = self.source.scales
        scale = scales[int(torch.randint(len(scales), (), generator=g))] if len(scales) > 1 else scales[0]
        flip = bool(self.config.flip and torch.rand((), generator=g).item() < 0.5)
        record = entry.record
        sample = sample_rois(
            entry.matches.max_iou,
            entry.matches.gt_label,
            count,
            self.config.sampling,
            g,
            has_gt=record.num_boxes > 0,
        )
        boxes = entry.candidates[sample.index]
        gt = torch.from_numpy(record.boxes)
        if flip:
            boxes = flip_boxes(boxes, record.width)
            gt = flip_boxes(gt, record.width) if gt.numel() else gt
        targets = torch.zeros(boxes.shape[0], 4)
        fg = sample.labels > 0
        if fg.any():
            raw = encode_targets(boxes[fg], gt[entry.matches.gt_index[sample.index[fg]]])
            targets[fg] = self.normalization.normalize(raw, sample.labels[fg])
        return {
            "record": record,
            "scale": scale,
            "flip": flip,
            "boxes": boxes,
            "labels": sample.labels,
            "targets": targets,
        }

    def train_step(self) -> dict[str, Any]:
        start = time.perf_counter()
        plan = self._plan()
        samples = [self._sample_image(self.entries[i], count) for i, count in plan.images]
        samples = [s for s in samples if s["boxes"].shape[0] > 0]
        total_rois = sum(s["boxes"].shape[0] for s in samples)
        ids = [s["record"].image_id for s in samples]
        self.optimizer.zero_grad(set_to_none=True)
        sums = {"loss": 0.0, "loss_cls": 0.0, "loss_loc": 0.0, "correct": 0.0, "fg": 0, "bg": 0}
        for n, s in enumerate(samples):
            inputs, im_scale = self.source.get(s["record"], s["scale"], s["flip"])
            rois = torch.cat([torch.zeros(len(s["boxes"]), 1), s["boxes"] * im_scale], dim=1)
            inputs, rois = inputs[None].to(self.device), rois.to(self.device)
            labels, targets = s["labels"].to(self.device), s["targets"].to(self.device)
            last = n == len(samples) - 1
            sync = contextlib.nullcontext() if last or not self.info.enabled else self.step_module.no_sync()
            with sync:
                with torch.autocast("cuda", enabled=self.scaler is not None):
                    logits, deltas = self.step_module(inputs, rois)
                parts = self.model.head.loss(
                    logits.float(),
                    deltas.float(),
                    labels,
                    targets,
                    lam=self.config.lam,
                    cls_only=self.config.cls_only,
                    normalizer=total_rois,
                )
                value = parts.total.item()
                if not math.isfinite(value) or value > self.config.explode_threshold:
                    raise RcnnError(
                        f"training diverged at iteration {self.iteration + 1}: loss {value:.4g} on images "
                        f"{', '.join(ids)} (lower --lr, add --warmup, or check these images' boxes)"
                    )
                if self.scaler is not None:
                    self.scaler.scale(parts.total).backward()
                else:
                    parts.total.backward()
            sums["loss"] += value
            sums["loss_cls"] += parts.cls.item()
            sums["loss_loc"] += parts.loc.item()
            sums["correct"] += parts.accuracy * len(labels)
            sums["fg"] += int((labels > 0).sum())
            sums["bg"] += int((labels == 0).sum())
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.iteration += 1
        values = [
            sums["loss"],
            sums["loss_cls"],
            sums["loss_loc"],
            sums["correct"] / max(total_rois, 1),
            float(sums["fg"]),
            float(sums["bg"]),
        ]
        loss, loss_cls, loss_loc, acc, fg, bg = distributed.mean_over_ranks(values, self.info, self.device)
        elapsed = time.perf_counter() - start
        return {
            "iter": self.iteration,
            "lr": lr,
            "loss": loss,
            "loss_cls": loss_cls,
            "loss_loc": loss_loc,
            "accuracy": acc,
            "fg": fg,
            "bg": bg,
            "images_per_s": len(samples) * self.info.world_size / max(elapsed, 1e-9),
            "images": ids,
        }

    # ----- the loop ------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg = self.config
        self.model.train()
        history: list[dict[str, Any]] = []
        seen: list[list[str]] = []
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        metrics = self.metrics_path.open("a") if self.info.is_main else None
        started = time.perf_counter()
        try:
            while self.iteration < cfg.iters:
                if cfg.time_limit_s is not None and self._time_up(started):
                    break
                row = self.train_step()
                seen.append(row.pop("images"))
                history.append(row)
                if metrics is not None:
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                if self.reporter is not None:
                    self.reporter.advance(
                        extra=f"loss {row['loss']:.3f} (cls {row['loss_cls']:.3f} loc {row['loss_loc']:.3f}) "
                        f"acc {row['accuracy']:.2f} {row['images_per_s']:.1f} img/s"
                    )
                if cfg.checkpoint_every and self.iteration % cfg.checkpoint_every == 0:
                    self.save_resume_checkpoint()
        finally:
            if metrics is not None:
                metrics.close()
        self.save_resume_checkpoint()  # every rank: it gathers their RNG states
        if self.info.is_main:
            self.save_model(self.out_dir / "model.pt")
        distributed.barrier(self.info)
        return TrainResult(self.iteration, history, self.normalization, seen)

    def _time_up(self, started: float) -> bool:
        up = time.perf_counter() - started >= self.config.time_limit_s
        if self.info.enabled:  # every rank stops at the same iteration
            up = distributed.mean_over_ranks([float(up)], self.info, self.device)[0] > 0
        return up

    def save_model(self, path: Path) -> None:
        meta = {
            "class_names": list(self.class_names),
            "train_config": _plain(self.config.to_dict()),
            "iterations": self.iteration,
            **self.meta,
        }
        save_checkpoint(path, self.model, meta, self.normalization.means, self.normalization.stds)


def _plain(obj: Any) -> Any:
    """JSON-plain copy (tuples -> lists) so configs compare equal after a torch.save round trip."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)))
