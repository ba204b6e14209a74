"""``rcnn propose``: region proposals for images, folders or a dataset split.

Thin layer: options -> a :class:`ProposalMethod` -> :func:`run_proposals` -> summary.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.options import image_root_option, max_pixels_option, mode_option, on_error_option
from rcnn_cli.cli.rpn_options import proposal_layer_options, rpn_layer_overrides
from rcnn_cli.errors import RcnnError
from rcnn_cli.proposals.mat_layouts import MAT_LAYOUTS
from rcnn_cli.proposals.registry import METHODS


def _print_eval(quality, seconds_per_image: float, quiet: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="proposal quality")
    row = quality.as_dict()
    row["s/img"] = seconds_per_image
    for key in row:
        table.add_column(key, justify="right")
    table.add_row(
        *[
            f"{v:.3f}"
            if isinstance(v, float) and not math.isnan(v)
            else ("-" if isinstance(v, float) else str(v))
            for v in row.values()
        ]
    )
    Console(file=sys.stdout, width=120).print(table)


@click.command(
    epilog="""\b
Examples:
  rcnn propose data/voc --split trainval              # into ./proposals, which rcnn train reads
  rcnn propose data/voc --split trainval -o proposals/
  rcnn propose photos/ -o props/photos --mode quality --workers 8
  rcnn propose data/voc --split test -o props/test --eval
  rcnn propose data/voc --split test -o rpn_props/ --method rpn --model runs/faster/model.pt --eval
  rcnn propose data/demo -o props/demo --method file --from data/demo --mat-layout x1y1x2y2-0based
  torchrun --nproc-per-node 4 -m rcnn_cli.cli.main propose data/voc -o props/all   # one shard per rank
""",
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "-o", "--output", default=None, type=click.Path(file_okay=False), help="Proposals folder [./proposals]."
)
@click.option(
    "--method",
    type=click.Choice(tuple(METHODS)),
    default="selective-search",
    show_default=True,
    help="; ".join(f"{name}: {entry.summary}" for name, entry in METHODS.items()) + ".",
)
@click.option(
    "--split", default=None, help="VOC split (ImageSets/Main/SPLIT.txt) when INPUT is a VOC folder."
)
@mode_option("--mode")
@click.option(
    "--max-proposals",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Best boxes kept per image (0: all).",
)
@click.option(
    "--min-size",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Drop boxes narrower or lower than this (pixels).",
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed of Selective Search's pseudo-random ranking."
)
@click.option(
    "--from", "source", type=click.Path(exists=True), help="--method file: folder or file to import."
)
@click.option(
    "--mat-layout",
    type=click.Choice(MAT_LAYOUTS),
    default="x1y1x2y2-0based",
    show_default=True,
    help=".mat box layout: Fast R-CNN demo files, or the VOC selective-search release.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes, one image each at a time.",
)
@click.option(
    "--shard", default=None, help="i/n: this process does every n-th image from i (default: RANK/WORLD_SIZE)."
)
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="--method rpn: the model.pt of rcnn train --rpn or --rpn-only.",
)
@proposal_layer_options(test_time=True)
@on_error_option("A bad image: report and go on, or stop.")
@click.option("--overwrite", is_flag=True, help="Replace a folder made with other settings.")
@max_pixels_option
@image_root_option
@click.option(
    "--eval",
    "evaluate",
    is_flag=True,
    help="Recall@0.5/0.7, MABO, boxes/img, s/img against the ground truth.",
)
@user_errors
def propose(
    inputs: tuple[str, ...],
    output: str | None,
    method: str,
    split: str | None,
    mode: str,
    max_proposals: int,
    min_size: float,
    seed: int,
    source: str | None,
    mat_layout: str,
    workers: int,
    shard: str | None,
    on_error: str,
    overwrite: bool,
    max_pixels: int,
    image_root: Path | None,
    evaluate: bool,
    model: str | None,
    **rpn_layer: Any,
) -> None:
    """Region proposals for INPUT (images, folders, a VOC folder or COCO JSON) into a folder:
    one <image_id>.npz per image (float32 boxes x1 y1 x2 y2 in original pixels, scores) and
    manifest.json. A rerun resumes; other settings into the same folder are refused."""
    from rcnn_cli.cli.defaults import dataset_origin, proposals_output
    from rcnn_cli.data import open_dataset
    from rcnn_cli.locks import FolderLock
    from rcnn_cli.progress import Reporter
    from rcnn_cli.proposals.registry import ProposalSettings, build_method
    from rcnn_cli.proposals.runner import run_proposals
    from rcnn_cli.proposals.storage import ProposalStore, parse_shard, shard_items

    ctx = get_context()
    if method == "rpn" and workers > 1 and ctx.torch_device().type == "cuda":
        # Worker processes are forked, and CUDA cannot be used again in a fork of a process that used it.
        raise RcnnError(
            "--method rpn on CUDA runs in one process (the GPU is the parallelism): drop --workers"
        )
    settings = ProposalSettings(
        method,
        mode,
        max_proposals,
        min_size,
        seed,
        source,
        mat_layout,
        model=model,
        rpn_layer=rpn_layer_overrides(rpn_layer),
        device=str(ctx.torch_device()) if method == "rpn" else "cpu",
    )
    shard_index, shard_count = parse_shard(shard)
    spec = inputs[0] if len(inputs) == 1 else list(inputs)
    policy = "raise" if on_error == "stop" else "skip"
    dataset = open_dataset(spec, split, on_error=policy, max_pixels=max_pixels, image_root=image_root)
    if not dataset.records and not dataset.problems:
        raise RcnnError(f"{', '.join(inputs)}: no images found")
    chosen = build_method(settings)
    output = proposals_output(output)
    store = ProposalStore(output)
    params = {"method": chosen.name, **chosen.params()}
    records = shard_items(dataset.records, shard_index, shard_count)
    bad_inputs = [str(p) for p in dataset.problems]
    # Shared: the shards of one run fill the folder together; --overwrite must be its only writer.
    with (
        FolderLock(output) as lock,
        Reporter("propose", total=len(records), verbosity=ctx.verbosity) as report,
    ):
        ids = [r.image_id for r in dataset.records]
        origin = dataset_origin(spec, split, output)  # so that rcnn train needs no --dataset
        store.prepare(params, ids, overwrite=overwrite, lock=lock.shared(), origin=origin)
        for problem in bad_inputs:
            report.log(f"skipped: {problem}")

        def on_result(result) -> None:
            if result.error:
                report.log(f"skipped: {result.error}")
            report.advance(extra=f"{result.num_boxes} boxes" if not result.error else "")

        done_before = sum(store.exists(r.image_id) for r in records)
        if done_before:
            report.advance(done_before, extra="already done")
        summary = run_proposals(
            chosen,
            records,
            store,
            workers=workers,
            on_error=on_error,
            on_result=on_result,
            replace_foreign=overwrite,
        )

    shard_note = f" (shard {shard_index}/{shard_count})" if shard_count > 1 else ""
    bad = len(summary.failed) + len(bad_inputs)
    click.echo(
        f"{len(summary.written)} images written, {summary.existing} already done, {bad} bad (skipped)"
        f"{shard_note} -> {output}"
        + (
            f"; {summary.boxes_per_image:.0f} boxes/img, {summary.seconds_per_image:.3f} s/img"
            if summary.written
            else ""
        )
    )
    if not summary.written and not summary.existing and bad:
        raise RcnnError(f"no proposals for any of the {bad} images: every one was bad (see above)")
    if evaluate:
        _evaluate(store, records, summary.seconds_per_image, ctx.quiet)


def _evaluate(store, records, seconds_per_image: float, quiet: bool) -> None:
    from rcnn_cli.evaluation.proposal_recall import evaluate_records

    labelled = [r for r in records if r.num_boxes and store.exists(r.image_id)]
    if not labelled:
        raise RcnnError("--eval needs ground truth: give a VOC folder or COCO JSON with boxes")
    quality = evaluate_records(labelled, lambda record: store.read(record.image_id).boxes)
    _print_eval(quality, seconds_per_image, quiet)
