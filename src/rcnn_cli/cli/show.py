"""``rcnn show KIND``: a PNG of what one stage does to one image, for students of the papers.

Thin layer: options -> the image (:func:`rcnn_cli.pictures.inputs.pick_image`) and the output path ->
the picture's function in :mod:`rcnn_cli.pictures`. Everything heavy is imported inside the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.options import (
    BACKBONES,
    image_root_option,
    max_pixels_option,
    proposal_options,
    proposal_source,
)
from rcnn_cli.models.specs import DEFAULT_BACKBONE

F = TypeVar("F", bound=Callable[..., Any])


class NumbersType(click.ParamType):
    """``x,y`` or ``x1,y1,x2,y2`` -> a tuple of ``count`` floats (pixels of the original image)."""

    def __init__(self, count: int, name: str) -> None:
        self.count = count
        self.name = name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            numbers = tuple(float(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"expected {self.name}, comma-separated numbers; got {value!r}", param, ctx)
        if len(numbers) != self.count:
            self.fail(
                f"expected {self.count} comma-separated numbers ({self.name}), got {value!r}", param, ctx
            )
        return numbers


def image_options(func: F) -> F:
    """IMAGE or ``--dataset D [--split S] [--image-id ID]``, and ``-o OUT.png|FOLDER``."""
    func = image_root_option(func)
    func = max_pixels_option(func)
    func = click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path),
        default=None,
        help="OUT.png, or a folder for <image id>_<kind>.png [default: the current folder].",
    )(func)
    func = click.option("--image-id", default=None, help="The image of --dataset [default: its first].")(func)
    func = click.option("--split", default=None, help="VOC split (ImageSets/Main/SPLIT.txt) of --dataset.")(
        func
    )
    func = click.option(
        "--dataset", "dataset_spec", default=None, help="VOC folder or COCO JSON (with its ground truth)."
    )(func)
    return click.argument("image", required=False)(func)


def _picked(
    image: str | None,
    dataset: str | None,
    split: str | None,
    image_id: str | None,
    max_pixels: int,
    image_root: Path | None,
):  # type: ignore[no-untyped-def]
    from rcnn_cli.pictures.inputs import pick_image

    return pick_image(image, dataset, split, image_id, max_pixels, image_root)


def _done(path: Path) -> None:
    click.echo(f"wrote {path}")


@click.group(
    epilog="""\b
Examples (data/bccd: a VOC folder, e.g. the bundled sample at rcnn_cli.data.sample_dataset_path()):
  rcnn show proposals --dataset data/bccd --image-id BloodImage_00000 --proposal-method selective-search
  rcnn show rois --dataset data/bccd --split trainval --proposals props/trainval -o pictures/
  rcnn show pooling --dataset data/bccd --image-id BloodImage_00000 --backbone vgg16 -o pooling.png
  rcnn show anchors photo.jpg --backbone vgg16 -o anchors.png
  rcnn show detections --dataset data/bccd --split test --detections dets/ -o pictures/
  rcnn show warp --dataset data/bccd --image-id BloodImage_00000 --proposal-method dense -o warp.png
""",
)
def show() -> None:
    """Pictures (PNG) of what each stage does: proposals, R-CNN's warped regions, sampled RoIs, RoI
    pooling, anchors, detections."""


@show.command(
    short_help="the top-N proposals and their sizes",
    epilog="""\b
Examples:
  rcnn show proposals photo.jpg --proposal-method selective-search --top 100 -o proposals.png
  rcnn show proposals --dataset data/bccd --image-id BloodImage_00000 --proposals props/ -o pictures/
""",
)
@image_options
@proposal_options("the image")
@click.option(
    "--top", type=click.IntRange(min=1), default=50, show_default=True, help="Boxes drawn, best first."
)
@click.option(
    "--max-proposals",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Proposals counted in the histogram, best first (0: all).",
)
@user_errors
def proposals(
    image: str | None,
    dataset_spec: str | None,
    split: str | None,
    image_id: str | None,
    output: Path | None,
    max_pixels: int,
    image_root: Path | None,
    proposals: Path | None,
    proposal_method: str | None,
    proposal_mode: str,
    top: int,
    max_proposals: int,
) -> None:
    """The top-N proposals on the image and a histogram of all of them by size (sqrt area)."""
    from rcnn_cli.pictures.inputs import output_path
    from rcnn_cli.pictures.proposals import proposals_picture

    picked = _picked(image, dataset_spec, split, image_id, max_pixels, image_root)
    source = proposal_source(proposals, proposal_method, proposal_mode, max_proposals, "the image")
    name = str(proposals) if proposals is not None else f"{proposal_method} {proposal_mode}"
    path = output_path(output, picked.record, "proposals")
    _done(proposals_picture(picked, source, path, top, name))


@show.command(
    short_help="a minibatch's fg/bg RoIs, hierarchical vs region-wise",
    epilog="""\b
Examples:
  rcnn show rois --dataset data/bccd --split trainval --proposals props/trainval -o rois.png
  rcnn show rois --dataset data/bccd --image-id BloodImage_00007 --proposal-method dense --seed 3
""",
)
@image_options
@proposal_options("the images")
@click.option(
    "--max-proposals",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Candidates per image, best first, as rcnn train reads them (0: all).",
)
@click.option("--images-per-batch", type=click.IntRange(min=1), default=2, show_default=True, help="N.")
@click.option("--rois-per-batch", type=click.IntRange(min=1), default=128, show_default=True, help="R.")
@click.option(
    "--thumbnails",
    type=click.IntRange(min=1, max=16),
    default=8,
    show_default=True,
    help="Images of the region-wise minibatch shown.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampling.")
@user_errors
def rois(
    image: str | None,
    dataset_spec: str | None,
    split: str | None,
    image_id: str | None,
    output: Path | None,
    max_pixels: int,
    image_root: Path | None,
    proposals: Path | None,
    proposal_method: str | None,
    proposal_mode: str,
    max_proposals: int,
    images_per_batch: int,
    rois_per_batch: int,
    thumbnails: int,
    seed: int,
) -> None:
    """One minibatch's foreground and background RoIs: hierarchical sampling (Fast R-CNN) beside
    region-wise sampling (R-CNN, SPPnet)."""
    from rcnn_cli.pictures.inputs import output_path
    from rcnn_cli.pictures.rois import rois_picture
    from rcnn_cli.training.sampler_config import SamplerConfig

    config = SamplerConfig(images_per_batch=images_per_batch, rois_per_batch=rois_per_batch)
    picked = _picked(image, dataset_spec, split, image_id, max_pixels, image_root)
    source = proposal_source(proposals, proposal_method, proposal_mode, max_proposals, "the images")
    path = output_path(output, picked.record, "rois")
    _done(rois_picture(picked, source, path, config, thumbnails, seed))


def _backbone_option(func: F) -> F:
    return click.option(
        "--backbone",
        type=click.Choice(BACKBONES),
        default=None,
        help="Stride and scale of this backbone [default: the --model's, else small_context, the default].",
    )(func)


def _model_backbone(model: Path | None, backbone: str | None) -> str:
    from rcnn_cli.errors import RcnnError

    if model is not None and backbone is not None:
        raise RcnnError("--backbone and --model: the model has its own backbone; give one of them")
    return backbone or DEFAULT_BACKBONE


@show.command(
    short_help="RoI pooling's bins, SPP's grids, RoIAlign's samples",
    epilog="""\b
Examples:
  rcnn show pooling --dataset data/bccd --image-id BloodImage_00000 -o pooling.png
  rcnn show pooling photo.jpg --box 120,80,260,200 --backbone vgg16 -o pooling.png
  rcnn show pooling photo.jpg --model runs/bccd/model.pt --channel 5 -o pooling.png
""",
)
@image_options
@click.option(
    "--box",
    type=NumbersType(4, "X1,Y1,X2,Y2"),
    default=None,
    help="The RoI in pixels of the original image [default: a gt box, else the image's middle third].",
)
@_backbone_option
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A trained model.pt: pool its conv features (else a stand-in map of the image's darkness).",
)
@click.option(
    "--channel", type=click.IntRange(min=0), default=None, help="Feature channel [the most active]."
)
@user_errors
def pooling(
    image: str | None,
    dataset_spec: str | None,
    split: str | None,
    image_id: str | None,
    output: Path | None,
    max_pixels: int,
    image_root: Path | None,
    box: tuple[float, float, float, float] | None,
    backbone: str | None,
    model: Path | None,
    channel: int | None,
) -> None:
    """One RoI on the feature map: RoI pooling's bins and maxima, SPP's grids, RoIAlign's samples."""
    from rcnn_cli.pictures.inputs import output_path
    from rcnn_cli.pictures.pooling_figure import pooling_picture

    name = _model_backbone(model, backbone)
    picked = _picked(image, dataset_spec, split, image_id, max_pixels, image_root)
    path = output_path(output, picked.record, "pooling")
    device = get_context().torch_device() if model is not None else "cpu"
    picture = pooling_picture(
        picked, path, box=box, backbone=name, model=model, channel=channel, device=device
    )
    _done(picture)


@show.command(
    short_help="an RPN's anchors and one image's positives/negatives",
    epilog="""\b
Examples:
  rcnn show anchors --dataset data/bccd --image-id BloodImage_00000 -o anchors.png
  rcnn show anchors photo.jpg --backbone vgg16 --at 320,240 -o anchors.png
  rcnn show anchors --dataset data/bccd --model runs/faster/model.pt -o pictures/
""",
)
@image_options
@_backbone_option
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A Faster R-CNN model.pt: its anchors, stride and scale.",
)
@click.option(
    "--at",
    type=NumbersType(2, "X,Y"),
    default=None,
    help="Show the anchors of the cell at this point of the original image [default: the centre].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the anchor sampling.")
@user_errors
def anchors(
    image: str | None,
    dataset_spec: str | None,
    split: str | None,
    image_id: str | None,
    output: Path | None,
    max_pixels: int,
    image_root: Path | None,
    backbone: str | None,
    model: Path | None,
    at: tuple[float, float] | None,
    seed: int,
) -> None:
    """The k anchors at one feature-map location, and one image's positive and negative anchors."""
    from rcnn_cli.pictures.anchors import anchors_picture
    from rcnn_cli.pictures.inputs import output_path

    name = _model_backbone(model, backbone)
    picked = _picked(image, dataset_spec, split, image_id, max_pixels, image_root)
    path = output_path(output, picked.record, "anchors")
    _done(anchors_picture(picked, path, backbone=name, model=model, at=at, seed=seed))


@show.command(
    short_help="detections as rcnn detect draws them",
    epilog="""\b
Examples:
  rcnn show detections --dataset data/bccd --split test --image-id BloodImage_00007 --detections dets/
  rcnn show detections photo.jpg --model runs/bccd/model.pt --proposal-method selective-search
  rcnn show detections photo.jpg --model runs/faster/model.pt -o pictures/     # its own RPN
""",
)
@image_options
@click.option(
    "--detections",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A detections folder made by 'rcnn detect'.",
)
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Detect with this model.pt instead.",
)
@proposal_options("the image (with --model)")
@click.option(
    "--draw-threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Draw boxes scoring at least this.",
)
@user_errors
def detections(
    image: str | None,
    dataset_spec: str | None,
    split: str | None,
    image_id: str | None,
    output: Path | None,
    max_pixels: int,
    image_root: Path | None,
    detections: Path | None,
    model: Path | None,
    proposals: Path | None,
    proposal_method: str | None,
    proposal_mode: str,
    draw_threshold: float,
) -> None:
    """Detections as 'rcnn detect' draws them: from a detections folder, or by running a --model."""
    from rcnn_cli.errors import RcnnError
    from rcnn_cli.pictures.detections import detections_picture
    from rcnn_cli.pictures.inputs import output_path

    given = proposals is not None or proposal_method is not None
    if detections is not None and given:
        raise RcnnError("--proposals/--proposal-method go with --model; --detections already holds boxes")
    picked = _picked(image, dataset_spec, split, image_id, max_pixels, image_root)
    source = proposal_source(proposals, proposal_method, proposal_mode, 2000, "the image") if given else None
    device = get_context().torch_device() if model is not None else "cpu"
    path = output_path(output, picked.record, "detections")
    picture = detections_picture(
        picked,
        path,
        detections=detections,
        model=model,
        proposals=source,
        device=device,
        min_score=draw_threshold,
    )
    _done(picture)


@show.command(
    short_help="R-CNN's regions, cropped with context and warped",
    epilog="""\b
Examples:
  rcnn show warp --dataset data/bccd --image-id BloodImage_00000 -o warp.png     # its gt boxes
  rcnn show warp photo.jpg --proposal-method selective-search --count 8 --backbone caffenet -o warp.png
""",
)
@image_options
@proposal_options("the image (optional: the ground-truth boxes alone are warped without)")
@click.option(
    "--count", type=click.IntRange(min=1, max=16), default=4, show_default=True, help="Proposals warped."
)
@_backbone_option
@click.option("--warp-size", type=click.IntRange(min=1), default=None, help="S [the backbone's input].")
@click.option(
    "--context-padding", type=click.IntRange(min=0), default=None, help="p [16 at 227, scaled to S]."
)
@user_errors
def warp(
    image: str | None,
    dataset_spec: str | None,
    split: str | None,
    image_id: str | None,
    output: Path | None,
    max_pixels: int,
    image_root: Path | None,
    proposals: Path | None,
    proposal_method: str | None,
    proposal_mode: str,
    count: int,
    backbone: str | None,
    warp_size: int | None,
    context_padding: int | None,
) -> None:
    """The image's ground-truth boxes (up to 4) and its best proposals, each cropped with context and
    warped to the network's input, as R-CNN trains and detects on them."""
    import numpy as np

    from rcnn_cli.data import read_record
    from rcnn_cli.models.fast_rcnn import default_config
    from rcnn_cli.pictures.inputs import output_path
    from rcnn_cli.pictures.warp import warp_picture

    config = default_config(
        backbone or DEFAULT_BACKBONE,
        1,
        method="rcnn",
        warp_size=warp_size or 0,
        context_padding=-1 if context_padding is None else context_padding,
    )
    picked = _picked(image, dataset_spec, split, image_id, max_pixels, image_root)
    gt = np.asarray(picked.record.boxes, np.float32).reshape(-1, 4)[:4] if picked.has_ground_truth else None
    boxes, kinds = [], []
    if gt is not None and len(gt):
        boxes.append(gt)
        kinds += ["gt"] * len(gt)
    if proposals is not None or proposal_method is not None:
        source = proposal_source(proposals, proposal_method, proposal_mode, count, "the image")
        found = np.asarray(source(picked.record, read_record(picked.record)), np.float32).reshape(-1, 4)
        boxes.append(found[:count])
        kinds += ["proposal"] * len(found[:count])
    chosen = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    path = output_path(output, picked.record, "warp")
    _done(warp_picture(picked, chosen, kinds, path, config.region_size, config.region_padding))
