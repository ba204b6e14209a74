"""``rcnn extract``: the single shared conv pass per image, caching conv maps for SPPnet-style training."""

from __future__ import annotations

from pathlib import Path

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.options import IntListType, backbone_option, image_root_option, max_pixels_option


@click.command(
    epilog="""\b
Examples:
  rcnn extract data/voc --split trainval --backbone vgg16 --weights vgg16.pth -o feats/
  rcnn train --dataset data/voc --split trainval --proposals props/ --backbone vgg16 --features feats/ \\
      --method sppnet -o runs/spp             # SPPnet whole: SPP pooling, fc tuned, SVMs, box regression
  rcnn extract data/voc --split trainval --backbone vgg16 --weights vgg16.pth \\
      --scales 480,576,688,864,1200 --max-size 2000 -o feats_ms/     # SPPnet's multi-scale option
  rcnn train --dataset data/voc --split trainval --proposals props/ --backbone vgg16 --features feats_ms/ \\
      --pool spp -o runs/spp_ms               # each RoI pooled at the scale nearest 224x224 pixels
  rcnn extract data/voc --split trainval --model runs/voc/model.pt --flip -o feats_voc/
""",
)
@click.argument("dataset")
@click.option("--split", default=None, help="VOC split, e.g. trainval.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(), help="Features folder.")
@backbone_option
@click.option("--weights", type=click.Path(), default=None, help="torchvision-layout state dict (.pth).")
@click.option("--model", "model_path", type=click.Path(), default=None, help="A trained model.pt instead.")
@click.option(
    "--scales",
    "--scale",
    "scales",
    type=IntListType(),
    default=None,
    help="Shorter side(s), comma-separated; several (SPPnet: 480,576,688,864,1200 with --max-size 2000) "
    "store a map per scale, and training pools each RoI at the scale nearest 224x224 pixels "
    "[600; small: 400; with --model: its first].",
)
@click.option(
    "--max-size", type=click.IntRange(min=1), default=None, help="Cap on the longer side [1000; small: 700]."
)
@click.option("--flip", is_flag=True, help="Also store the maps of the mirrored images (for flip training).")
@max_pixels_option
@image_root_option
@user_errors
def extract(
    dataset: str,
    split: str | None,
    out_dir: str,
    backbone: str,
    weights: str | None,
    model_path: str | None,
    scales: tuple[int, ...] | None,
    max_size: int | None,
    flip: bool,
    max_pixels: int,
    image_root: Path | None,
) -> None:
    """Run the conv layers once per image and write float16 feature maps plus a manifest."""
    import dataclasses

    from rcnn_cli.data import open_dataset
    from rcnn_cli.models import FastRCNN, default_config, load_checkpoint, load_torchvision_weights
    from rcnn_cli.progress import Reporter
    from rcnn_cli.training.features import extract_features

    ctx = get_context()
    device = ctx.torch_device()
    data = open_dataset(dataset, split, max_pixels=max_pixels, image_root=image_root)
    for problem in data.problems:
        click.echo(f"skipped: {problem}", err=True)
    if model_path:
        model, _ = load_checkpoint(model_path)
        cfg = model.config  # a model trained at several scales is extracted at its first unless told
        model.config = dataclasses.replace(
            cfg, scales=scales or cfg.scales[:1], max_size=max_size or cfg.max_size
        )
    else:
        overrides = {"scales": scales, "max_size": max_size}
        model = FastRCNN(default_config(backbone, max(data.num_classes, 1), **overrides))
        if weights:
            load_torchvision_weights(model, weights)
    with Reporter("extract", total=len(data.records), verbosity=ctx.verbosity) as report:
        done = extract_features(model, data.records, out_dir, flip=flip, device=device, reporter=report)
    click.echo(f"extracted {done} images ({len(data.records) - done} already done) -> {out_dir}")
