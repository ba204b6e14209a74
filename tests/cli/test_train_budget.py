"""``rcnn train --time-limit`` says where it stopped and how to go on; ``--budget`` fits the whole
schedule into the time, ends with the lr stepped, and resumes with the fitted schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.training.trainer import Trainer
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")
LR = 0.01


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_voc_with_proposals(tmp_path_factory.mktemp("budget"))


def args(data: Path, out: Path, *extra: str) -> list[str]:
    """200 iterations, warm-up 10, the lr step at 150 (75% of --iters), checkpoints every 30."""
    return [
        "train", "--dataset", str(data / "voc"), "--proposals", str(data / "props"), "-o", str(out),
        "--scales", "96", "--max-size", "200", "--fc-dims", "32,32", "-R", "16", "--device", "cpu",
        "--iters", "200", "--warmup", "10", "--lr", str(LR), "--checkpoint-every", "30", *extra,
    ]  # fmt: skip


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


class CountingClock:
    """A wall clock that reads ``step`` seconds more at each call. The trainer reads it once a loop
    iteration (and once more with --time-limit) and twice at the start: the speed is exact."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.calls * self.step


def test_a_time_limited_run_says_so_and_how_to_go_on(data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [*args(data, tmp_path / "run", "--time-limit", "0.001"), "-q"])
    assert result.exit_code == 0, result.output
    (line,) = result.output.strip().splitlines()
    done = len(rows(tmp_path / "run"))
    assert done < 200
    assert line.startswith(
        f"stopped by --time-limit after {done} of 200 iterations (before the lr step at 150)"
    )
    assert line.endswith("continue with --resume, or fit the whole schedule into the time with --budget")


def test_a_budget_fits_the_schedule_and_ends_with_the_lr_stepped(
    data: Path, tmp_path: Path, monkeypatch
) -> None:
    """1 s an iteration: 23 iterations measured (3 skipped, 20 timed) take 23 s of the 40 s budget;
    95% of it, 38 s, leaves 15: 38 iterations, x0.19 of 200, the lr step 150 -> 28.5 -> 29, warm-up 2."""
    monkeypatch.setattr(Trainer, "clock", staticmethod(CountingClock(1.0)))
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, args(data, run, "--budget", "40s"))
    assert result.exit_code == 0, result.output
    assert (
        "--budget 40s: 1 s/iteration; schedule scaled x0.19 to fit: 38 of 200 iterations, lr step at 29, "
        "warm-up 2" in result.output
    )
    assert (
        "trained 38 iterations (the 200-iteration schedule fitted to --budget 40s: x0.19, lr step at 29)"
        in result.output
    )
    lrs = [row["lr"] for row in rows(run)]
    assert len(lrs) == 38
    assert lrs[0] == pytest.approx(LR / 10)  # the requested warm-up (10) while measuring
    assert lrs[28] == pytest.approx(LR) and lrs[29] == pytest.approx(LR * 0.1) == lrs[-1]  # stepped at 29
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert (state["train_config"]["iters"], state["train_config"]["lr_steps"]) == (38, [29])
    assert state["budget"]["requested"] == {"iters": 200, "lr_steps": [150], "warmup_iters": 10}
    model = torch.load(run / "model.pt", weights_only=True)
    assert model["meta"]["train_config"]["iters"] == 38 and model["meta"]["budget"]["fitted"]["iters"] == 38


def test_lambda_start_falls_to_lambda_at_the_fitted_lr_step(data: Path, tmp_path: Path, monkeypatch) -> None:
    """--lambda-start 3 with the 40 s budget above: λ falls from 3 towards 1 at the requested lr step
    (150) over the 23 measured iterations, then towards 1 at the fitted one (29), and stays at 1 after
    it; each row's λ is read back as (loss - loss_cls) / loss_loc."""
    monkeypatch.setattr(Trainer, "clock", staticmethod(CountingClock(1.0)))
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, args(data, run, "--budget", "40s", "--lambda-start", "3"))
    assert result.exit_code == 0, result.output
    table = rows(run)
    assert len(table) == 38
    checked = 0
    for i, row in enumerate(table):  # row i: iteration i (0-based) of the run
        expected = 3 - 2 * i / 150 if i < 23 else 3 - 2 * i / 29 if i < 29 else 1.0
        if row["loss_loc"] > 1e-3:  # a minibatch without foreground has no box loss to weigh
            assert (row["loss"] - row["loss_cls"]) / row["loss_loc"] == pytest.approx(expected, rel=1e-3)
            checked += 1
    assert checked > 30


class IterationClock:
    """A wall clock that moves only in training steps: ``slow`` seconds for each of the first ``until``
    iterations, ``fast`` after them (reading it takes no time)."""

    def __init__(self, slow: float, fast: float, until: int) -> None:
        self.slow, self.fast, self.until = slow, fast, until
        self.now = 0.0
        self.steps = 0

    def __call__(self) -> float:
        return self.now

    def step(self) -> None:
        self.steps += 1
        self.now += self.slow if self.steps <= self.until else self.fast


def test_a_budget_times_the_speed_again_and_fits_the_request_anew(
    data: Path, tmp_path: Path, monkeypatch
) -> None:
    """The first 23 iterations take 2 s, the rest 1 s. First fit: 2 s/iteration, 46 s spent of 130 s;
    95%, 123.5 s, leaves 77.5: 38 more, 61 iterations (x0.305: lr step 45.75 -> 46, warm-up 3.05 -> 3).
    Timed again at max(10% of 61, 23 + 20) = 43: iterations 24-43 took 20 s, 1 s/iteration, 66 s
    spent, 57.5 left: 100 of the 200 asked for (x0.5: lr step 75, warm-up 5), 123 s in all."""
    clock = IterationClock(slow=2.0, fast=1.0, until=23)
    step = Trainer.train_step

    def timed_step(self: Trainer):
        clock.step()
        return step(self)

    monkeypatch.setattr(Trainer, "clock", staticmethod(clock))
    monkeypatch.setattr(Trainer, "train_step", timed_step)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, args(data, run, "--budget", "130s"))
    assert result.exit_code == 0, result.output
    first_fit = "--budget 130s: 2 s/iteration; schedule scaled x0.305 to fit: 61 of 200 iterations"
    assert first_fit in result.output
    assert (
        "--budget 130s: timed again over iterations 24-43, 1 s/iteration; schedule scaled x0.5 to fit: "
        "100 of 200 iterations, lr step at 75, warm-up 5" in result.output
    )
    lrs = [row["lr"] for row in rows(run)]
    assert len(lrs) == 100 and clock.now == 123.0
    assert lrs[74] == pytest.approx(LR) and lrs[75] == pytest.approx(LR * 0.1) == lrs[-1]
    model = torch.load(run / "model.pt", weights_only=True)
    assert model["meta"]["budget"]["retimed_over"] == [23, 43]
    assert model["meta"]["budget"]["requested"] == {"iters": 200, "lr_steps": [150], "warmup_iters": 10}


def test_a_budget_run_stopped_early_resumes_its_fitted_schedule(
    data: Path, tmp_path: Path, monkeypatch
) -> None:
    """With --time-limit the clock is read twice an iteration while measuring: 2 s an iteration, 46 s
    measured of 80 s; 95% of it, 76 s, leaves 30: 38 iterations again. Then only the limit reads it,
    once an iteration: 60 s are up after iteration 35 (48 s at iteration 23, + 12), checkpointed. The
    resumed run (the same command line) goes on with the fitted 38, not the 200 asked for."""
    monkeypatch.setattr(Trainer, "clock", staticmethod(CountingClock(1.0)))
    run = tmp_path / "run"
    command = args(data, run, "--budget", "80s", "--time-limit", "1")
    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 0, first.output
    assert "2 s/iteration; schedule scaled x0.19 to fit: 38 of 200 iterations, lr step at 29" in first.output
    assert "stopped by --time-limit after 35 of 38 iterations -> " in first.output  # after the step
    resumed = CliRunner().invoke(cli, [*command, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "other settings" not in resumed.output
    assert "kept from the start of the run: --budget 80s: 2 s/iteration;" in resumed.output
    assert "trained 38 iterations (the 200-iteration schedule fitted to --budget 80s" in resumed.output
    lrs = [row["lr"] for row in rows(run)]
    assert len(lrs) == 38 and lrs[-1] == pytest.approx(LR * 0.1)


def test_a_budget_without_a_unit_is_a_usage_error(data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, args(data, tmp_path / "run", "--budget", "12"))
    assert result.exit_code == 2 and "--budget" in result.output
    assert "give a number and a unit, e.g. 90s, 12m or 1.5h" in result.output
