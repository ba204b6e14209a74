"""``rcnn compare``: R-CNN, SPPnet, Fast R-CNN and Faster R-CNN trained, run and scored side by side on
the user's dataset, then one report (the plan: :mod:`rcnn_cli.cli.compare_steps`; the report:
:mod:`rcnn_cli.report`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.options import DurationType, backbone_option, image_root_option, max_pixels_option


@click.command(
    epilog="""\b
Examples:
  rcnn compare --dataset data/bccd -o report/ --budget 60m     # all four methods, 15 min of training each
  rcnn compare --dataset data/bccd -o report/ --budget 60m     # again after a kill: finished steps are kept
  rcnn compare --dataset data/bccd -o report-2/ --methods fast,faster --budget 20m
Writes report/index.html (open it in a browser), report/report.md and report/results.json, the charts
beside them, and every method's runs under report/runs/METHOD/ (train/, detections/, evaluation.json);
the Selective Search proposals, computed once, under report/runs/proposals/.
""",
)
@click.option("--dataset", required=True, help="VOC folder (with ImageSets/Main splits).")
@click.option("--split-train", default="trainval", show_default=True)
@click.option("--split-test", default="test", show_default=True)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder.",
)
@click.option(
    "--methods",
    default="rcnn,sppnet,fast,faster",
    show_default=True,
    help="Comma-separated: rcnn, sppnet, fast, faster (sppnet needs fast: it reuses its conv layers).",
)
@click.option(
    "--budget",
    type=DurationType(),
    default="60m",
    show_default=True,
    help="Training time of all the methods together, shared equally (each its rcnn train --budget).",
)
@backbone_option
@click.option("--max-proposals", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--train-option", "train_options", multiple=True, hidden=True)  # tests: e.g. --iters 2
@max_pixels_option
@image_root_option
@user_errors
def compare(
    dataset: str,
    split_train: str,
    split_test: str,
    output: Path,
    methods: str,
    budget: float,
    backbone: str,
    max_proposals: int,
    train_options: tuple[str, ...],
    max_pixels: int,
    image_root: Path | None,
) -> None:
    """Train and test R-CNN, SPPnet, Fast R-CNN and Faster R-CNN on the same data, and report what each
    step of the family bought: accuracy, training time, disk, test time."""
    import shlex

    from rcnn_cli.cli.compare_steps import (
        CompareSettings,
        check_settings,
        command_invoker,
        finished,
        plan,
        run_step,
    )
    from rcnn_cli.cli.detect import detect
    from rcnn_cli.cli.evaluate import evaluate
    from rcnn_cli.cli.propose import propose
    from rcnn_cli.cli.train import train
    from rcnn_cli.report.pages import table_rows, write_report
    from rcnn_cli.report.results import gather

    ctx = get_context()
    extra = tuple(word for option in train_options for word in shlex.split(option))
    settings = CompareSettings(
        dataset=dataset,
        split_train=split_train,
        split_test=split_test,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
        budget_s=float(budget),
        backbone=backbone,
        max_proposals=max_proposals,
        extra_train=extra,
        image_options=(
            ("--max-pixels", str(max_pixels)) + (("--image-root", str(image_root)) if image_root else ())
        ),
    )
    check_settings(output, settings)
    steps = plan(settings, output)
    commands = {"propose": propose, "train": train, "detect": detect, "evaluate": evaluate}
    invoke = command_invoker(commands, ctx)  # the steps show their own progress (bars, ETA) as usual
    start = time.monotonic()

    def say(message: str) -> None:
        if not ctx.quiet:
            click.secho(
                f"compare {message} ({_minutes(time.monotonic() - start)} so far)", err=True, bold=True
            )

    for number, step in enumerate(steps, 1):
        done = finished(output, step)
        what = f"[{number}/{len(steps)}] {step.name}"
        if done is not None:
            say(f"{what}: done earlier ({done.seconds:.0f} s), kept")
            continue
        budget = f", its budget {_minutes(settings.share_s)}" if step.stage == "train" else ""
        say(f"{what}: rcnn {step.args[0]}{budget}")
        run_step(step, output, invoke)
    results = gather(output)
    results["settings"]["command"] = (
        "rcnn " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else "rcnn compare"
    )
    pages = write_report(results, output)
    _print_summary(table_rows(results))
    click.echo(f"report -> {pages['index.html']} ({time.monotonic() - start:.0f} s)")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _print_summary(rows: list[dict[str, str]]) -> None:
    """The closing table on the terminal (rich), one row per method."""
    from rich.console import Console
    from rich.table import Table

    if not rows:
        click.echo("no method finished")
        return
    table = Table(title="rcnn compare")
    for name in rows[0]:
        table.add_column(name)
    for row in rows:
        table.add_row(*row.values())
    Console(width=200).print(table)  # wide: the table's columns, not the terminal's, set its width
