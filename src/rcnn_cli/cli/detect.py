"""``rcnn detect``: run a trained Fast R-CNN on images, folders or a dataset split."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.options import (
    image_root_option,
    max_pixels_option,
    merge_ranks,
    proposal_options,
    proposal_source,
    svd_rank_options,
)
from rcnn_cli.cli.rpn_options import proposal_layer_options, rpn_layer_overrides
from rcnn_cli.errors import RcnnError


@click.command(
    epilog="""\b
Examples:
  rcnn detect img.jpg --svd-rank 256   # the latest run's model and proposal method -> ./detections
  rcnn detect photos/ --model runs/bccd/model.pt --proposal-method selective-search -o dets/photos
  rcnn detect img.jpg --model runs/faster/model.pt -o dets/faster        # Faster R-CNN: its own RPN
  rcnn detect --dataset data/bccd --split test --model runs/bccd/model.pt --proposals proposals/ \\
      -o dets/test --svd-ranks fc6=128,fc7=32 --timing
Output: DIR/detections.json (COCO results), DIR/per_image/<id>.json, DIR/pictures/<id>.jpg, DIR/timing.json.
""",
)
@click.argument("images", nargs=-1)
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="model.pt [the latest run's, ./runs/latest].",
)
@click.option(
    "-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="[./detections]"
)
@click.option("--dataset", "dataset_spec", default=None, help="VOC folder or COCO JSON instead of IMAGES.")
@click.option("--split", default=None, help="VOC split (ImageSets/Main/SPLIT.txt).")
@proposal_options("the images")
@click.option(
    "--max-proposals",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Use at most this many per image (0: all).",
)
@click.option(
    "--scale", type=click.IntRange(min=1), default=None, help="Shorter image side [default: the model's]."
)
@click.option(
    "--max-size", type=click.IntRange(min=1), default=None, help="Cap on the longer side [the model's]."
)
@click.option(
    "--nms",
    "nms_threshold",
    type=click.FloatRange(0, 1),
    default=0.3,
    show_default=True,
    help="Per-class NMS IoU threshold.",
)
@click.option(
    "--score-threshold",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.05,
    show_default=True,
    help="Keep detections scoring above this.",
)
@click.option(
    "--max-detections",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="At most this many per image.",
)
@click.option(
    "--box-voting",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Replace each kept box by the score-weighted mean of its class's boxes at IoU >= this (0: off).",
)
@click.option(
    "--refine",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Passes of iterative localization: the head again on its own refined boxes.",
)
@proposal_layer_options(test_time=True)
@svd_rank_options
@click.option(
    "--timing", is_flag=True, help="Print the time per stage (proposals, conv, RoI pool, fc6, ...)."
)
@click.option("--no-pictures", is_flag=True, help="Do not draw the pictures with labelled boxes.")
@click.option(
    "--draw-threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Pictures show boxes scoring at least this.",
)
@click.option("--overwrite", is_flag=True, help="Replace outputs of an earlier run with other settings.")
@max_pixels_option
@image_root_option
@user_errors
def detect(
    images: tuple[str, ...],
    model: Path | None,
    output: Path | None,
    dataset_spec: str | None,
    split: str | None,
    proposals: Path | None,
    proposal_method: str | None,
    proposal_mode: str,
    max_proposals: int,
    scale: int | None,
    max_size: int | None,
    nms_threshold: float,
    score_threshold: float,
    max_detections: int,
    box_voting: float,
    refine: int,
    svd_rank: int | None,
    svd_ranks: dict[str, int] | None,
    timing: bool,
    no_pictures: bool,
    draw_threshold: float,
    overwrite: bool,
    max_pixels: int,
    image_root: Path | None,
    **rpn_layer: Any,
) -> None:
    """Detect objects with a trained Fast R-CNN: per-class NMS, score threshold, labelled pictures.

    A Faster R-CNN model (rcnn train --rpn) proposes with its own RPN unless given proposals; a Fast
    R-CNN without --proposals/--proposal-method computes them as its training proposals were made. Plain
    truncated SVD with --svd-rank(s); for low ranks 'rcnn compress --distill-on' keeps more mAP."""
    from rcnn_cli.cli import defaults
    from rcnn_cli.data import open_dataset
    from rcnn_cli.evaluation.report import print_rows
    from rcnn_cli.inference.detect import DetectConfig, Detector
    from rcnn_cli.inference.detections_folder import detect_records, detection_params
    from rcnn_cli.inference.postprocess import PostprocessConfig
    from rcnn_cli.inference.truncated_svd import compress_layers
    from rcnn_cli.models import load_checkpoint
    from rcnn_cli.progress import Reporter
    from rcnn_cli.temporaries import remove_stale_temporaries

    ctx = get_context()
    if bool(images) == bool(dataset_spec):
        raise RcnnError("give IMAGES (files, folders) or --dataset, not both and not neither")
    config = DetectConfig(
        scale=scale,
        max_size=max_size,
        max_proposals=max_proposals,
        postprocess=PostprocessConfig(score_threshold, nms_threshold, max_detections, box_voting),
        refine=refine,
    )
    spec = dataset_spec if dataset_spec else (images[0] if len(images) == 1 else list(images))
    dataset = open_dataset(spec, split, max_pixels=max_pixels, image_root=image_root)
    for problem in dataset.problems:
        click.echo(f"skipped: {problem}", err=True)
    if not dataset.records:
        raise RcnnError("no readable images to detect on")

    model = model if model is not None else defaults.latest_model()
    device = ctx.torch_device()
    net, meta = load_checkpoint(model, device)
    if meta.get("stage") == "rpn":
        raise RcnnError(
            f"{model}: an RPN trained alone (rcnn train --rpn-only) has no trained detector; "
            f"use it with rcnn propose --method rpn --model {model}"
        )
    own_rpn = getattr(net, "rpn", None) is not None and proposals is None and proposal_method is None
    layer = rpn_layer_overrides(rpn_layer)
    if layer and not own_rpn:
        given = ", ".join(f"--{name.replace('_', '-')}" for name, v in rpn_layer.items() if v is not None)
        raise RcnnError(f"{given}: set a Faster R-CNN's own proposals, and this run uses other ones")
    if own_rpn:
        net.rpn.set_test_proposals(**layer)
        source = None
        where = f"rpn: {dataclasses.asdict(net.rpn.config.proposals)}"
        defaults.say("the model's own region proposal network for the proposals")
    elif proposals is None and proposal_method is None:
        from rcnn_cli.proposals.sources import method_source

        given = click.get_current_context().get_parameter_source("proposal_mode")
        mode = proposal_mode if given is not click.core.ParameterSource.DEFAULT else None
        settings = defaults.training_proposals(meta, mode)
        source = method_source(settings)
        where = f"{settings.method}:{settings.mode}"
    else:
        source = proposal_source(proposals, proposal_method, proposal_mode, max_proposals)
        where = str(proposals.resolve()) if proposals else f"{proposal_method}:{proposal_mode}"
    ranks = merge_ranks(svd_rank, svd_ranks)
    if ranks:
        for report in compress_layers(net.head, ranks):
            if ctx.verbosity > 1:
                click.echo(f"{report.name}: rank {report.rank}, error {report.relative_error:.4f}", err=True)
    detector = Detector(net, meta["class_names"], config, device, meta.get("config"))
    params = detection_params(model, detector, {**meta.get("svd_ranks", {}), **ranks}, where)
    output = defaults.detections_output(output)
    # What rcnn evaluate needs to find the ground truth without --dataset.
    origin = {**defaults.dataset_origin(spec, split, output), "model": defaults.record_path(model, output)}
    if output.is_dir():  # what a killed run left half written, in the folder and its subfolders
        remove_stale_temporaries(output, *(child for child in output.iterdir() if child.is_dir()))
    with Reporter("detect", total=len(dataset.records), verbosity=ctx.verbosity) as reporter:
        summary = detect_records(
            detector,
            dataset.records,
            source,
            output,
            params=params,
            draw=not no_pictures,
            reporter=reporter,
            overwrite=overwrite,
            draw_threshold=draw_threshold,
            origin=origin,
        )
    if timing:
        print_rows("Time per stage", summary.timer.rows())
    skipped = len(summary.skipped) + len(dataset.problems)
    click.echo(
        f"{summary.processed + summary.resumed} images ({summary.resumed} resumed, {skipped} skipped), "
        f"{len(summary.results)} detections -> {output / 'detections.json'}"
        + ("" if no_pictures else f"; pictures in {output / 'pictures'}")
    )
    if summary.processed + summary.resumed == 0:
        raise RcnnError(f"nothing detected: all {skipped} images were skipped (see above)")
