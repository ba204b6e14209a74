"""``rcnn train --budget 12m``: fit the whole schedule into a wall-clock budget.

``--time-limit`` stops a run where the clock says, wherever that is in its schedule: often before the
learning rate steps, so the model it leaves is not converged. ``--budget`` instead measures the speed
over the first iterations (:data:`MEASURED` of them, after :data:`SKIPPED` that are slower: the first
allocations and caches) and scales the schedule, iterations, warm-up and lr steps by one factor
(:func:`fit_schedule`), so the run ends on the schedule's last iteration, lr stepped, inside the budget.
A budget longer than the schedule needs changes nothing: the budget is a limit, not a target.

Twenty iterations can mistime the rest of a run: on photos of every size, or with the first images
drawn large, they ran 35% slower than the run's average, and the run ended in 20 of its 30 minutes. So
the speed is timed once more, over the iterations from the first measurement to :data:`RETIME_FRACTION`
of the fitted schedule (:func:`retime_iteration`), and the schedule is fitted again from that speed;
only before the first lr step, so the run's shape is unchanged.

The budget counts the training loop's time (the data is loaded and the model built before it). The
fitted schedule is stored in the run's checkpoint (:class:`BudgetFit`, the ``budget`` section), so
``--resume`` continues it instead of measuring again. Nothing here imports torch: the CLI parses
``--budget`` with :func:`parse_duration`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rcnn_cli.errors import RcnnError

#: Iterations left out of the measurement at the start of a run (slower: allocations, caches, warm-up
#: of the allocator and the kernels), then the iterations measured.
SKIPPED = 3
MEASURED = 20
#: Where the speed is timed again (a fraction of the first fitted schedule's iterations), over the
#: iterations since the first measurement; at least :data:`MEASURED` more of them.
RETIME_FRACTION = 0.1
#: The share of the budget the schedule is fitted into: the rest covers checkpoints, the final save and
#: the measurement's error.
SHARE = 0.95

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh])\s*", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``90s``, ``12m``, ``1.5h`` -> seconds (> 0). A bare number is refused: minutes or seconds?"""
    match = _DURATION.fullmatch(str(text))
    if match is None:
        raise RcnnError(f"{text!r} is not a duration: give a number and a unit, e.g. 90s, 12m or 1.5h")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not seconds > 0:
        raise RcnnError(f"{text!r}: the budget must be more than 0")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds as the user would write them: ``90s``, ``12m``, ``1.5h``."""
    if seconds >= 3600 and seconds % 360 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Schedule:
    """The part of a TrainConfig that a budget scales."""

    iters: int
    lr_steps: tuple[int, ...]
    warmup_iters: int

    @classmethod
    def of(cls, config: Any) -> Schedule:
        """The schedule of a TrainConfig."""
        return cls(config.iters, tuple(config.lr_steps), config.warmup_iters)

    def applied_to(self, config: Any) -> Any:
        """``config`` (a TrainConfig) with this schedule."""
        return dataclasses.replace(
            config, iters=self.iters, lr_steps=self.lr_steps, warmup_iters=self.warmup_iters
        )

    def to_dict(self) -> dict[str, Any]:
        return {"iters": self.iters, "lr_steps": list(self.lr_steps), "warmup_iters": self.warmup_iters}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        return cls(int(data["iters"]), tuple(int(s) for s in data["lr_steps"]), int(data["warmup_iters"]))


def fit_schedule(
    seconds_per_iteration: float, budget_s: float, requested: Schedule, spent_s: float = 0.0, done: int = 0
) -> Schedule:
    """``requested`` scaled to fit into ``budget_s``, at ``seconds_per_iteration``, after ``done``
    iterations that took ``spent_s`` (the measurement's).

    The iterations that fit: ``done`` + what the rest of :data:`SHARE` of the budget holds, at most
    the requested ones (never more: a budget is a limit) and at least ``done`` (they are trained
    already). Warm-up and lr steps are scaled by the same factor, fitted / requested iterations, so
    the run keeps its shape: an lr step at 75% of the run stays at 75%.
    """
    if not seconds_per_iteration > 0:
        raise ValueError(f"seconds_per_iteration must be > 0, got {seconds_per_iteration}")
    left = max(0.0, SHARE * budget_s - spent_s)
    iters = max(1, min(requested.iters, done + math.floor(left / seconds_per_iteration)), done)
    factor = iters / requested.iters
    steps = sorted({max(1, _scaled(step, factor)) for step in requested.lr_steps})
    return Schedule(iters, tuple(steps), _scaled(requested.warmup_iters, factor))


def retime_iteration(fitted: Schedule, measured_until: int) -> int | None:
    """The iteration count at which to time the speed again (over the iterations after
    ``measured_until``, where the first measurement ended) and fit ``fitted``'s request once more;
    None where that would come at or after the first lr step or the end (nothing left to fit)."""
    at = max(math.ceil(RETIME_FRACTION * fitted.iters), measured_until + MEASURED)
    return at if at < min((*fitted.lr_steps, fitted.iters)) else None


def _scaled(count: int, factor: float) -> int:
    """``count`` × ``factor``, rounded half up (as one does by hand; Python's round() goes to even)."""
    return math.floor(count * factor + 0.5)


@dataclass(frozen=True)
class BudgetFit:
    """What ``--budget`` measured and chose: stored in the checkpoint, said to the user."""

    budget_s: float
    seconds_per_iteration: float
    requested: Schedule
    fitted: Schedule
    #: for a fit made again (:func:`retime_iteration`): the iteration counts the speed was timed
    #: between; None for the first fit
    retimed_over: tuple[int, int] | None = None

    @property
    def factor(self) -> float:
        return self.fitted.iters / self.requested.iters

    @property
    def scaled(self) -> bool:
        return self.fitted != self.requested

    def describe(self) -> str:
        """One line: the speed, and the schedule chosen (or that the requested one fits)."""
        budget = format_duration(self.budget_s)
        speed = f"{self.seconds_per_iteration:.3g} s/iteration"
        if self.retimed_over is not None:
            speed = f"timed again over iterations {self.retimed_over[0] + 1}-{self.retimed_over[1]}, {speed}"
        if not self.scaled:
            need = format_duration(round(self.requested.iters * self.seconds_per_iteration))
            return f"--budget {budget}: {speed}; the whole schedule fits (about {need})"
        steps = ", ".join(str(s) for s in self.fitted.lr_steps) or "none"
        return (
            f"--budget {budget}: {speed}; schedule scaled x{self.factor:.3g} to fit: "
            f"{self.fitted.iters} of {self.requested.iters} iterations, lr step at {steps}, "
            f"warm-up {self.fitted.warmup_iters}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_s": self.budget_s,
            "seconds_per_iteration": self.seconds_per_iteration,
            "requested": self.requested.to_dict(),
            "fitted": self.fitted.to_dict(),
            **({"retimed_over": list(self.retimed_over)} if self.retimed_over is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetFit:
        return cls(
            float(data["budget_s"]),
            float(data["seconds_per_iteration"]),
            Schedule.from_dict(data["requested"]),
            Schedule.from_dict(data["fitted"]),
            _span(data.get("retimed_over")),
        )


def _span(data: Any) -> tuple[int, int] | None:
    """A stored (from, to) pair of iteration counts, or None."""
    return None if data is None else (int(data[0]), int(data[1]))


class SpeedMeter:
    """Times the iterations of a run from ``first`` (the iteration it starts at): :meth:`tick` after each
    one returns (seconds per iteration, seconds since the start) once :data:`MEASURED` iterations after
    the :data:`SKIPPED` ones are timed, None before. ``clock`` is read once at the start and once a
    tick. :meth:`time_again` then times a second window, from where the first ended to a later
    iteration; between the two the clock is not read."""

    def __init__(self, first: int, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.started = clock()
        self.window_start = first + SKIPPED
        self.window_end = self.window_start + MEASURED
        self.window_started_at: float | None = self.started if SKIPPED == 0 else None
        self.ended_at = self.started  # the clock where the last window measured ended
        #: the second window's (from, to) iteration counts, once :meth:`time_again` set it
        self.retimed_over: tuple[int, int] | None = None

    def tick(self, iteration: int) -> tuple[float, float] | None:
        """``iteration``: the count of iterations done (the trainer's ``iteration`` after a step)."""
        if self.retimed_over is not None and iteration < self.window_end:
            return None
        now = self.clock()
        if iteration == self.window_start:
            self.window_started_at = now
        if iteration < self.window_end or self.window_started_at is None:
            return None
        self.ended_at = now
        return (now - self.window_started_at) / (self.window_end - self.window_start), now - self.started

    def time_again(self, until: int) -> SpeedMeter:
        """Time the iterations from the end of the window just measured to ``until``; returns self."""
        self.retimed_over = (self.window_end, until)
        self.window_start, self.window_end = self.retimed_over
        self.window_started_at = self.ended_at
        return self
