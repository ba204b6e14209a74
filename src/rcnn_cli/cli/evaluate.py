"""``rcnn evaluate``: detection AP (VOC07, VOC area, COCO), proposal quality, or the truncated-SVD sweep."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.evaluate_proposals import check_plot_option, proposal_recall
from rcnn_cli.cli.options import (
    IntListType,
    LabelledFolder,
    LabelledFolderType,
    RankSettingsType,
    distill_options,
    distinct_labels,
    image_root_option,
    max_pixels_option,
)
from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.distill.config import DistillConfig


@click.command(
    epilog="""\b
Examples:
  rcnn evaluate       # ./detections, on the dataset it was made from
  rcnn evaluate --dataset data/bccd --split test --detections detections/detections.json -o report.json
  rcnn evaluate --dataset data/bccd --split test --proposals proposals/
  rcnn evaluate --dataset data/bccd --split test --proposals ss=props/ss --proposals eb=props/eb \\
      --top-n 300,2000 --recall-plot recall.png -o report.json
  (recall at IoU 0.5, 0.55, ..., 0.95 of each folder's best 300 and 2000 boxes per image, one line each)
  rcnn evaluate --svd-sweep --model runs/bccd/model.pt --dataset data/bccd --split test --proposals proposals/
  (add --distill-split trainval for a second row per setting with the layers distilled on trainval)
""",
)
@click.option(
    "--dataset",
    "dataset_spec",
    default=None,
    help="VOC folder or COCO JSON with the ground truth [the one the detections or proposals were "
    "made from].",
)
@click.option("--split", default=None, help="VOC split (ImageSets/Main/SPLIT.txt).")
@click.option(
    "--detections",
    type=click.Path(exists=True, path_type=Path),
    help="COCO results JSON (or the folder 'rcnn detect' wrote) [./detections when nothing else is asked].",
)
@click.option(
    "--proposals",
    type=LabelledFolderType(),
    multiple=True,
    callback=distinct_labels,
    help="Proposals folder, as LABEL=FOLDER or FOLDER (labelled by its name); repeat to compare several. "
    "Alone: recall against IoU, AR, MABO; with --svd-sweep (one folder), the boxes to detect on.",
)
@click.option(
    "--top-n",
    "top_ns",
    type=IntListType(minimum=1),
    default=None,
    help="--proposals: measure each folder at its best N boxes per image, e.g. 300,2000 (default: all).",
)
@click.option(
    "--recall-plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=check_plot_option,
    help="--proposals: draw recall against IoU, one line per folder and N, as this PNG.",
)
@click.option(
    "--svd-sweep", is_flag=True, help="Table of SVD ranks x fc time, detect time, mAP (needs --model)."
)
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Model for --svd-sweep [the latest run's].",
)
@click.option(
    "--sweep-ranks",
    type=RankSettingsType(),
    default=None,
    help="--svd-sweep settings split by ';', e.g. 'none;fc6=1024,fc7=256' (default: fractions of width).",
)
@click.option(
    "--passes",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="--svd-sweep: timed rounds; each keeps its best.",
)
@click.option(
    "--distill-split",
    default=None,
    help="--svd-sweep: also distill each setting on this split of --dataset (e.g. trainval).",
)
@distill_options("--distill-split: images to distill on (at most).")
@click.option(
    "--iou",
    "iou_threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.5,
    show_default=True,
    help="IoU for a VOC true positive.",
)
@click.option("--no-coco", is_flag=True, help="Skip the COCO metrics (VOC AP only).")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report as JSON."
)
@max_pixels_option
@image_root_option
@user_errors
def evaluate(
    dataset_spec: str | None,
    split: str | None,
    detections: Path | None,
    proposals: tuple[LabelledFolder, ...],
    top_ns: tuple[int, ...] | None,
    recall_plot: Path | None,
    svd_sweep: bool,
    model: Path | None,
    sweep_ranks: list[dict[str, int]] | None,
    passes: int,
    distill_split: str | None,
    distill_images: int,
    distill_steps: int,
    iou_threshold: float,
    no_coco: bool,
    output: Path | None,
    max_pixels: int,
    image_root: Path | None,
) -> None:
    """Measure detections (VOC07 11-point AP, VOC area AP, COCO AP/AP50/AP75), proposals (recall at IoU
    0.5 to 0.95, average recall, MABO, boxes per image), or the speed/accuracy trade-off of truncated SVD."""
    from rcnn_cli.cli import defaults
    from rcnn_cli.data import open_dataset
    from rcnn_cli.evaluation.report import make_console, print_detection_report, write_report

    ctx = get_context()
    console = make_console()
    if detections is None and not proposals and not svd_sweep:
        detections = defaults.detections_input(None)
    modes = sum((detections is not None, svd_sweep, bool(proposals) and not svd_sweep))
    if modes != 1:
        raise RcnnError("give exactly one of --detections, --proposals, or --svd-sweep (with --model)")
    if distill_split is not None and not svd_sweep:
        raise RcnnError("--distill-split goes with --svd-sweep")
    measuring_proposals = bool(proposals) and not svd_sweep and detections is None
    for name, value in (("--top-n", top_ns), ("--recall-plot", recall_plot)):
        if value is not None and not measuring_proposals:
            raise RcnnError(f"{name} goes with --proposals alone (not --detections or --svd-sweep)")
    if svd_sweep and len(proposals) > 1:
        raise RcnnError("--svd-sweep detects on one --proposals folder; give only one")
    only_files = None
    if dataset_spec is None and detections is not None:
        found = defaults.evaluation_data(detections)
        dataset_spec, split, only_files = found.dataset, split or found.split, found.only_files
    elif dataset_spec is None and proposals:
        dataset_spec, made_split = defaults.proposals_dataset(proposals[0].folder)
        split = split or made_split
    elif dataset_spec is None:
        raise RcnnError("give --dataset (a VOC folder or COCO JSON with the ground truth)")
    if svd_sweep and model is None:
        model = defaults.latest_model()
    dataset = open_dataset(dataset_spec, split, max_pixels=max_pixels, image_root=image_root)
    if only_files is not None:  # the model's dataset: only the images that were detected count
        kept = [r for r in dataset.records if r.path.resolve() in only_files]
        dataset = dataclasses.replace(dataset, records=kept)
    for problem in dataset.problems:  # the measures leave these images out: say so
        click.echo(f"skipped: {problem}", err=True)
    if not dataset.records:
        raise RcnnError(f"{dataset_spec}: no images to evaluate on")
    if not dataset.class_names:
        raise RcnnError(f"{dataset_spec}: no classes (an unlabelled image folder cannot be evaluated)")

    if detections is not None:
        from rcnn_cli.evaluation.coco_format import read_coco_results
        from rcnn_cli.evaluation.evaluate import evaluate_results

        path = detections / "detections.json" if detections.is_dir() else detections
        results = read_coco_results(path)
        report = evaluate_results(
            dataset.records,
            dataset.class_names,
            results,
            iou_threshold=iou_threshold,
            coco=not no_coco,
            source=str(path),
        )
        report["detections"] = str(path)
        if report["ignored_detections"]:
            click.echo(
                f"note: {report['ignored_detections']} detections are for images outside this split; ignored",
                err=True,
            )
        print_detection_report(report, console)
    elif svd_sweep:
        distill = None
        if distill_split is not None:
            distill = (distill_split, DistillConfig(images=distill_images, steps=distill_steps), max_pixels)
        folder = proposals[0].folder if proposals else None
        report = _svd_sweep(
            (dataset_spec, split), dataset, model, folder, sweep_ranks, passes, distill, ctx, console
        )
    else:
        report = proposal_recall(
            dataset, (dataset_spec, split), proposals, top_ns, recall_plot, console, ctx.verbosity
        )
    if output is not None:
        write_report(output, report)
        if ctx.verbosity > 0:
            click.echo(f"report written to {output}", err=True)


def _svd_sweep(source, dataset, model_path, proposals, settings, passes, distill, ctx, console) -> dict:  # type: ignore[no-untyped-def]
    from rcnn_cli.evaluation.evaluate import evaluate_results
    from rcnn_cli.evaluation.report import print_rows
    from rcnn_cli.inference.svd_sweep import original_model_loader, svd_sweep
    from rcnn_cli.proposals.sources import folder_source

    if model_path is None or proposals is None:
        raise RcnnError("--svd-sweep needs --model and --proposals")
    device = ctx.torch_device()

    def mean_ap(results):  # type: ignore[no-untyped-def]
        mean = evaluate_results(dataset.records, dataset.class_names, results, coco=False)["mean"]
        return {"mAP": mean["voc_ap"] or 0.0, "mAP07": mean["voc07_ap"] or 0.0}

    log = (lambda m: click.echo(m, err=True)) if ctx.verbosity > 0 else (lambda m: None)
    distill_images, distill_config = None, DistillConfig()
    if distill is not None:
        from rcnn_cli.inference.distill import open_calibration

        (spec, split), (distill_split, distill_config, max_pixels) = source, distill
        if distill_split == split:
            raise RcnnError(f"--distill-split {distill_split} is the split being evaluated; use another")
        # A skipped image is always worth a line, even with -q.
        distill_images = open_calibration(
            spec,
            distill_split,
            folder_source(proposals),
            distill_config,
            lambda m: click.echo(m, err=True),
            max_pixels=max_pixels,
        )
    rows = svd_sweep(
        original_model_loader(model_path, dataset.class_names, device),
        dataset.records,
        folder_source(proposals),
        mean_ap,
        settings,
        device=device,
        log=log,
        passes=passes,
        distill_images=distill_images,
        distill_config=distill_config,
    )
    print_rows("Truncated SVD sweep (mAP: VOC area AP, mAP07: VOC07 11-point, %)", rows, console)
    return {"kind": "svd_sweep", "model": str(model_path), "images": len(dataset.records), "rows": rows}
