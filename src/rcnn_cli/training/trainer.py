"""The Fast R-CNN training loop (paper §2.3): SGD on minibatches of N images × R/N RoIs.

One iteration: sample the minibatch (:mod:`.minibatch`: hierarchical or region-wise), train on it
(:mod:`.step`: image by image, then one optimizer step), log its row (:mod:`.metrics`). Faster R-CNN
(``config.stage`` "joint" or "rpn") plans only the images and their scale and flip; its step
(:mod:`.joint_step`) takes the RoIs from the RPN's proposals as it trains. Everything
random draws from seeded generators whose state goes into the checkpoint (:mod:`.resume`), so
``--resume`` continues bit for bit.

Files in the run folder: ``checkpoints/last.pt`` (model, optimizer, scheduler, RNG states; atomic),
``metrics.jsonl`` (one line per iteration), ``model.pt`` (self-contained, box normalization folded).

``--time-limit`` stops the loop where the clock says (:attr:`TrainResult.time_limited`); ``--budget``
measures the first iterations and scales the schedule to fit (:mod:`.budget`), then times them once
more and fits again before the lr step, every rank alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.checkpoint import save_checkpoint
from rcnn_cli.models.fast_rcnn import FastRCNN
from rcnn_cli.models.faster_rcnn import FasterRCNN
from rcnn_cli.temporaries import remove_stale_temporaries
from rcnn_cli.training import distributed
from rcnn_cli.training.budget import BudgetFit, Schedule, SpeedMeter, fit_schedule, retime_iteration
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.entries import ImageEntry, ImageSource, target_normalization
from rcnn_cli.training.joint_step import JointStep, plan_joint_minibatch
from rcnn_cli.training.metrics import MetricsLog, metrics_row, progress_text
from rcnn_cli.training.minibatch import sample_minibatch
from rcnn_cli.training.resume import (
    Settings,
    load_resume_state,
    plain_config,
    restore_rng_state,
    rng_state,
    run_settings,
    save_resume_state,
)
from rcnn_cli.training.sampling import ImageOrder
from rcnn_cli.training.solver import lr_lambda
from rcnn_cli.training.step import IterationStep
from rcnn_cli.training.targets import TargetNormalization
from rcnn_cli.training.weight_average import WeightAverage


@dataclass
class TrainResult:
    iterations: int
    history: list[dict[str, Any]]
    normalization: TargetNormalization
    seen_images: list[list[str]]  # image ids of this rank per iteration
    time_limited: bool = False  # --time-limit stopped the run before its last iteration
    budget: BudgetFit | None = None  # the schedule --budget chose, if it chose one


class Trainer:
    """Trains ``model`` on ``entries``; writes into ``out_dir`` (rank 0 only)."""

    #: The wall clock of --time-limit and --budget (a test's stand-in makes the speed exact).
    clock: Callable[[], float] = time.perf_counter

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
        self.order = ImageOrder(len(entries), config.seed, self.info.rank, self.info.world_size)
        self.generator = torch.Generator().manual_seed(config.seed * 1000 + 1 + self.info.rank)
        self.step = self._make_step()
        self.optimizer = self.step.optimizer
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(config))
        torch.manual_seed(config.seed * 1000 + 7 + self.info.rank)  # dropout
        self.iteration = 0
        self.budget_fit: BudgetFit | None = None
        self.average = WeightAverage(model, config.ema) if config.ema is not None else None
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl", self.info.is_main)

    def _make_step(self) -> IterationStep:
        """Fast R-CNN's step on the entries' proposals, or the RPN's (joint, or alone)."""
        if self.config.stage == "fast_rcnn":
            if self.model.config.method == "rcnn":  # one conv pass per warped window
                from rcnn_cli.training.warp_step import WarpedRegionStep

                return WarpedRegionStep(self.model, self.config, self.source, self.info, self.device)
            return IterationStep(self.model, self.config, self.source, self.info, self.device)
        if not isinstance(self.model, FasterRCNN):
            raise RcnnError(
                f"--{'rpn-only' if self.config.stage == 'rpn' else 'rpn'} needs a model with an RPN"
            )
        return JointStep(
            self.model, self.config, self.source, self.info, self.device, self.normalization, self.generator
        )

    # ----- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoints" / "last.pt"

    def save_resume_checkpoint(self) -> None:
        """Every rank calls this: it gathers their image orders and RNG states; rank 0 writes."""
        local = {"order": self.order.state_dict(), "rng": rng_state(self.generator, self.device)}
        ranks = distributed.gather_objects(local, self.info)
        state = {
            "iteration": self.iteration,
            **self.settings(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ranks": ranks,
            "target_means": self.normalization.means,
            "target_stds": self.normalization.stds,
        }
        if self.average is not None:
            state["weight_average"] = self.average.state_dict()
        if self.info.is_main:
            save_resume_state(self.checkpoint_path, state)

    def settings(self) -> Settings:
        """What a continuation of this run must share with it (compared by :meth:`resume`)."""
        ids = [entry.record.image_id for entry in self.entries]
        settings = run_settings(self.config, self.model, self.meta.get("split"), ids, self.class_names)
        if self.budget_fit is not None:  # not compared: the resumed run takes it from the checkpoint
            settings["budget"] = self.budget_fit.to_dict()
        return settings

    def resume(self) -> None:
        """Load ``checkpoints/last.pt``: weights, optimizer, schedule, sampling order and RNG states."""
        state = load_resume_state(self.checkpoint_path, self.out_dir, self.settings(), self.info.world_size)
        if isinstance(state.get("budget"), dict):  # the run fitted its schedule to --budget: keep it
            self._use_budget_fit(BudgetFit.from_dict(state["budget"]))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.average is not None:  # the settings match, so a run with --ema saved its average
            self.average.load_state_dict(state["weight_average"])
        mine = state["ranks"][self.info.rank]
        self.order.load_state_dict(mine["order"])
        restore_rng_state(mine["rng"], self.generator, self.device)
        self.normalization = TargetNormalization(state["target_means"], state["target_stds"])
        self.iteration = int(state["iteration"])  # fit() keeps the metrics rows up to here

    # ----- the loop ------------------------------------------------------------------------------
    def train_step(self) -> dict[str, Any]:
        """One iteration; returns its metrics row (with this rank's ``images``)."""
        started = time.perf_counter()
        samples: list[Any]
        if self.config.stage == "fast_rcnn":
            samples = sample_minibatch(
                self.entries, self.order, self.config, self.source.scales, self.normalization, self.generator
            )
        else:  # the RoIs come from the RPN, in the step
            samples = plan_joint_minibatch(
                self.entries, self.order, self.config, self.source.scales, self.generator
            )
        sums = self.step(samples, self.iteration)
        if self.average is not None:
            self.average.update(self.model)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.iteration += 1
        images = [s.record.image_id for s in samples]
        return metrics_row(self.iteration, lr, sums, images, started, self.info, self.device)

    def fit(self) -> TrainResult:
        self.model.train()
        history: list[dict[str, Any]] = []
        seen: list[list[str]] = []
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.out_dir, self.checkpoint_path.parent)  # a killed run's
        started = self.clock()
        first = self.iteration
        measuring = self.config.budget_s is not None and self.budget_fit is None
        meter = SpeedMeter(first, self.clock) if measuring else None
        time_limited = False
        with self.metrics.continuing_from(self.iteration):
            while self.iteration < self.config.iters:
                if self.config.time_limit_s is not None and self._time_up(started):
                    time_limited = True
                    break
                row = self.train_step()
                seen.append(row.pop("images"))
                history.append(row)
                self.metrics.write(row)
                if self.reporter is not None:
                    self.reporter.advance(extra=progress_text(row))
                if meter is not None and (measured := meter.tick(self.iteration)) is not None:
                    self._fit_to_budget(*measured, first, meter.retimed_over)
                    # Once more, later in the run (budget.retime_iteration), if before the lr step.
                    first_fit = meter.retimed_over is None
                    again = retime_iteration(Schedule.of(self.config), self.iteration) if first_fit else None
                    meter = meter.time_again(again) if again is not None else None
                every = self.config.checkpoint_every
                if every and self.iteration % every == 0:
                    self.save_resume_checkpoint()
        self.save_resume_checkpoint()  # every rank: it gathers their RNG states
        if self.average is not None:  # what the run hands on (model.pt, the CLI's summary) is θ̄
            self.model.load_state_dict(self.average.average)
        if self.info.is_main:
            self.save_model(self.out_dir / "model.pt")
        distributed.barrier(self.info)
        return TrainResult(self.iteration, history, self.normalization, seen, time_limited, self.budget_fit)

    def _fit_to_budget(
        self,
        seconds_per_iteration: float,
        spent_s: float,
        first: int,
        retimed_over: tuple[int, int] | None = None,
    ) -> None:
        """Scale the schedule to ``--budget`` at the measured speed; with ``retimed_over``, fit the
        same request again at a speed timed over those iterations. Every rank fits from the same
        numbers, averaged over the ranks, so all of them train the same schedule (the budget too: the
        alternating schedule gives each step the time left on the rank's own clock)."""
        assert self.config.budget_s is not None
        budget_s, seconds_per_iteration, spent_s = distributed.mean_over_ranks(
            [self.config.budget_s, seconds_per_iteration, spent_s], self.info, self.device
        )
        # A second fit starts again from what the user asked for, not from the first fit's schedule.
        requested = self.budget_fit.requested if self.budget_fit is not None else Schedule.of(self.config)
        fitted = fit_schedule(seconds_per_iteration, budget_s, requested, spent_s, self.iteration)
        fit = BudgetFit(budget_s, seconds_per_iteration, requested, fitted, retimed_over)
        self._use_budget_fit(fit, done=self.iteration)
        if self.reporter is not None:
            self.reporter.log(fit.describe())
            self.reporter.set_total(self.config.iters - first)

    def _use_budget_fit(self, fit: BudgetFit, done: int = 0) -> None:
        """Train ``fit``'s schedule from iteration ``done`` on: the scheduler's lr function becomes the
        fitted schedule's, and the next iteration's lr is its lr there (its warm-up or steps may be past
        already). A resume loads the scheduler's state after this."""
        self.budget_fit = fit
        self.config = fit.fitted.applied_to(self.config)
        self.step.config = self.config  # its box-loss λ follows the fitted lr step (--lambda-start)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.config), last_epoch=done - 1
        )

    def _time_up(self, started: float) -> bool:
        up = self.clock() - started >= self.config.time_limit_s
        if self.info.enabled:  # every rank stops at the same iteration
            up = distributed.mean_over_ranks([float(up)], self.info, self.device)[0] > 0
        return up

    def save_model(self, path: Path) -> None:
        meta = {
            "class_names": list(self.class_names),
            "stage": self.config.stage,
            "train_config": plain_config(self.config),
            "iterations": self.iteration,
            **({"budget": self.budget_fit.to_dict()} if self.budget_fit is not None else {}),
            **self.meta,
        }
        save_checkpoint(path, self.model, meta, self.normalization.means, self.normalization.stds)
