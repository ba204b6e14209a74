"""``--budget``: parsing durations, fitting a schedule into a budget (worked by hand), the speed meter."""

from __future__ import annotations

import itertools

import pytest

from rcnn_cli.errors import RcnnError
from rcnn_cli.training.budget import (
    MEASURED,
    SKIPPED,
    BudgetFit,
    Schedule,
    SpeedMeter,
    fit_schedule,
    format_duration,
    parse_duration,
    retime_iteration,
)
from rcnn_cli.training.config import SMALL_RECIPE, TrainConfig

SMALL = Schedule(SMALL_RECIPE.iters, SMALL_RECIPE.lr_steps, SMALL_RECIPE.warmup_iters)  # 3000, 2250, 100


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90.0), ("12m", 720.0), ("1.5h", 5400.0), (" 2M ", 120.0), (".5m", 30.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["12", "12x", "", "m", "-1m", "0s", "1.5 hours", "1h30m"])
def test_what_is_not_a_duration_is_one_line_naming_the_units(text: str) -> None:
    with pytest.raises(RcnnError) as err:
        parse_duration(text)
    assert "\n" not in str(err.value)
    assert "90s, 12m or 1.5h" in str(err.value) or "more than 0" in str(err.value)


def test_durations_are_shown_as_written() -> None:
    assert [format_duration(s) for s in (90, 720, 5400, 45.5, 3600)] == ["90s", "12m", "1.5h", "45.5s", "1h"]


def test_fitting_the_small_recipe_into_12_minutes_by_hand() -> None:
    """1 s/iteration, 23 iterations (23 s) measured: 95% of 720 s is 684 s, 661 s left, 661 more
    iterations: 684 in all, x0.228 of 3000; the lr step 2250 x 0.228 = 513, the warm-up 100 x 0.228 =
    22.8 -> 23."""
    fitted = fit_schedule(1.0, 720.0, SMALL, spent_s=23.0, done=23)
    assert fitted == Schedule(684, (513,), 23)


def test_a_budget_the_schedule_fits_in_changes_nothing() -> None:
    assert fit_schedule(0.1, 3600.0, SMALL, spent_s=2.3, done=23) == SMALL  # 3000 x 0.1 s = 5 min < 1 h


def test_a_budget_spent_on_the_measurement_keeps_what_was_trained() -> None:
    fitted = fit_schedule(1.0, 20.0, SMALL, spent_s=23.0, done=23)  # 19 s of 20 s: all spent
    assert fitted.iters == 23  # never fewer than done; 2250 x 23/3000 = 17.25 -> 17, 0.77 -> 1
    assert fitted == Schedule(23, (17,), 1)


def test_every_step_is_scaled_and_steps_that_meet_become_one() -> None:
    assert fit_schedule(1.0, 100.0 / 0.95, Schedule(1000, (500, 800), 0)) == Schedule(100, (50, 80), 0)
    assert fit_schedule(1.0, 1.0 / 0.95, Schedule(10, (8, 9), 4)) == Schedule(1, (1,), 0)


def test_a_schedule_applies_to_a_config_and_round_trips() -> None:
    config = Schedule(684, (513,), 23).applied_to(TrainConfig.for_backbone("small", budget_s=720.0))
    assert (config.iters, config.lr_steps, config.warmup_iters, config.budget_s) == (684, (513,), 23, 720.0)
    fit = BudgetFit(720.0, 1.0, SMALL, Schedule.of(config))
    assert BudgetFit.from_dict(fit.to_dict()) == fit
    assert fit.factor == pytest.approx(0.228)
    assert fit.describe() == (
        "--budget 12m: 1 s/iteration; schedule scaled x0.228 to fit: 684 of 3000 iterations, "
        "lr step at 513, warm-up 23"
    )
    assert "the whole schedule fits (about 5m)" in BudgetFit(720.0, 0.1, SMALL, SMALL).describe()


def test_a_bad_budget_in_the_config_names_the_option() -> None:
    with pytest.raises(RcnnError, match="--budget must be more than 0"):
        TrainConfig(budget_s=0.0)


def test_the_meter_times_the_iterations_after_the_first_few() -> None:
    """A clock that reads 2 s more at each call: 2 s per iteration, the start read at 0."""
    ticks = itertools.count(0, 2.0)
    meter = SpeedMeter(first=10, clock=lambda: next(ticks))
    results = [meter.tick(iteration) for iteration in range(11, 11 + SKIPPED + MEASURED)]
    assert all(r is None for r in results[:-1])
    assert results[-1] == (2.0, 2.0 * (SKIPPED + MEASURED))  # s/iteration, seconds since the start


def test_the_alternating_schedule_gives_each_step_the_budget_left_over_the_steps_left() -> None:
    """As --time-limit: the first of the four steps gets a quarter of it, and _share keeps it whole."""
    import time

    from rcnn_cli.training.alternating import _share, _time_left

    assert _share(TrainConfig.for_backbone("small", budget_s=720.0)).budget_s == 720.0
    assert _time_left(time.monotonic() + 720.0, 1) == pytest.approx(180.0, abs=1.0)
    assert _time_left(time.monotonic() + 100.0, 4) == pytest.approx(100.0, abs=1.0)  # the last: all


def test_the_speed_is_timed_again_at_a_tenth_of_the_run_and_only_before_its_lr_step() -> None:
    assert retime_iteration(SMALL, SKIPPED + MEASURED) == 300  # 10% of 3000, past 23 + 20
    assert retime_iteration(Schedule(200, (150,), 10), 23) == 43  # 10% is 20: 20 more after 23
    assert retime_iteration(Schedule(38, (29,), 2), 23) is None  # 43 is past the lr step at 29
    assert retime_iteration(Schedule(50, (), 0), 23) == 43
    assert retime_iteration(Schedule(43, (), 0), 23) is None  # the run's end: nothing left to fit


def test_a_fit_made_again_says_where_it_was_timed_and_round_trips() -> None:
    again = BudgetFit(200.0, 1.0, Schedule(200, (150,), 10), Schedule(167, (125,), 8), (23, 43))
    assert again.describe() == (
        "--budget 200s: timed again over iterations 24-43, 1 s/iteration; schedule scaled x0.835 to fit: "
        "167 of 200 iterations, lr step at 125, warm-up 8"
    )
    assert BudgetFit.from_dict(again.to_dict()) == again
    first = BudgetFit(200.0, 2.0, Schedule(200, (150,), 10), Schedule(95, (71,), 5))
    assert "retimed_over" not in first.to_dict()  # as a checkpoint from before the re-timing
    assert BudgetFit.from_dict(first.to_dict()) == first


def test_the_meter_times_a_second_window_reading_the_clock_only_at_its_end() -> None:
    """2 s a read for the first window, as above (ends at 46 s, iteration 23); the second window's
    one read, at iteration 43, says 96 s: (96 - 46) / 20 = 2.5 s/iteration, 96 s since the start."""
    readings = iter([*itertools.islice(itertools.count(0, 2.0), 1 + SKIPPED + MEASURED), 96.0])
    meter = SpeedMeter(first=0, clock=lambda: next(readings))
    assert [meter.tick(i) for i in range(1, SKIPPED + MEASURED)] == [None] * (SKIPPED + MEASURED - 1)
    assert meter.tick(SKIPPED + MEASURED) == (2.0, 46.0)
    assert meter.time_again(43).retimed_over == (23, 43)
    assert [meter.tick(i) for i in range(24, 43)] == [None] * 19  # no reads: the iterator would run out
    assert meter.tick(43) == (2.5, 96.0)
