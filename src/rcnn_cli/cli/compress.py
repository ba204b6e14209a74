"""``rcnn compress``: truncated SVD of fc6/fc7 (Fast R-CNN §3.1) into a new checkpoint, optionally
distilled towards the original model on the user's images."""

from __future__ import annotations

from pathlib import Path

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.options import (
    distill_options,
    image_root_option,
    max_pixels_option,
    merge_ranks,
    proposal_options,
    proposal_source,
    svd_rank_options,
)
from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.distill.config import DistillConfig


@click.command(
    epilog="""\b
Examples (the paper's fractions: 1/4 of fc6's width, 1/16 of fc7's; 1024 and 256 for VGG16):
  rcnn compress          # the latest run's model.pt at the paper's fractions -> model_svd.pt beside it
  rcnn compress runs/voc/model.pt -o runs/voc/model_svd.pt --svd-ranks fc6=128,fc7=32
  rcnn compress runs/bccd/model.pt -o runs/bccd/model_svd.pt --svd-ranks fc6=128,fc7=32 \\
      --distill-on data/bccd --split trainval --proposals proposals/trainval
The new checkpoint records its ranks: 'rcnn detect --model runs/voc/model_svd.pt' loads it as it is.
--distill-on trains the factorized layers to give the original model's scores and boxes on RoIs of
those images (no labels needed; 1-2 min on 2 CPU cores for the small head, use a GPU for VGG16-size
heads): it recovers most of the mAP that plain SVD loses at low ranks (docs/BENCHMARKS.md).
""",
)
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="[MODEL's folder/model_svd.pt]",
)
@svd_rank_options
@click.option(
    "--rois",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="RoIs per timed fc pass (the batch the head sees).",
)
@click.option(
    "--distill-on",
    "distill_on",
    default=None,
    help="Images (VOC folder, COCO JSON or image folder) to distill the factorized layers on.",
)
@click.option("--split", default=None, help="VOC split of --distill-on, e.g. trainval.")
@proposal_options("the --distill-on images")
@distill_options("Images to distill on (at most).")
@max_pixels_option
@image_root_option
@user_errors
def compress(
    model: Path | None,
    output: Path | None,
    svd_rank: int | None,
    svd_ranks: dict[str, int] | None,
    rois: int,
    distill_on: str | None,
    split: str | None,
    proposals: Path | None,
    proposal_method: str | None,
    proposal_mode: str,
    distill_images: int,
    distill_steps: int,
    max_pixels: int,
    image_root: Path | None,
) -> None:
    """Factorize fc layers W ≈ U_t Σ_t V_tᵀ: print parameters, reconstruction error and fc time per layer.

    MODEL: the latest run's model.pt when left out. Without --svd-rank(s): the paper's fractions of each
    layer's width (fc6 1/4, fc7 1/16)."""
    from rcnn_cli.cli.defaults import compress_paths
    from rcnn_cli.evaluation.report import print_rows
    from rcnn_cli.inference.compress import compress_checkpoint

    ctx = get_context()
    model, output = compress_paths(model, output)
    images = None
    config = DistillConfig(images=distill_images, steps=distill_steps)
    if distill_on is None:
        if proposals is not None or proposal_method is not None or split is not None:
            raise RcnnError("--split, --proposals and --proposal-method go with --distill-on IMAGES")
    else:
        source = proposal_source(proposals, proposal_method, proposal_mode, images="the --distill-on images")
        images = _distill_images(distill_on, split, source, config, max_pixels, image_root)
    log = (lambda m: click.echo(m, err=True)) if ctx.verbosity > 0 else (lambda _m: None)
    result = compress_checkpoint(
        model,
        output,
        merge_ranks(svd_rank, svd_ranks),
        rois=rois,
        device=ctx.torch_device(),
        distill_images=images,
        distill_config=config,
        distill_source=_describe(distill_on, split, proposals, proposal_method),
        log=log,
    )
    print_rows("Truncated SVD", result.rows)
    if result.distill is not None:
        r = result.distill
        click.echo(
            f"distilled on {r.rois} RoIs of {r.images} images, {r.steps} steps in {r.seconds:.0f} s: "
            f"KL {r.kl_before:.4f} -> {r.kl_after:.4f}, box {r.box_before:.4f} -> {r.box_after:.4f}, "
            f"top-class agreement {100 * r.agreement_before:.1f}% -> {100 * r.agreement_after:.1f}%"
        )
    click.echo(f"compressed model -> {output}")


def _distill_images(spec, split, source, config: DistillConfig, max_pixels: int, image_root: Path | None):  # type: ignore[no-untyped-def]
    """The (rgb, proposals) pairs to distill on, read lazily from ``spec``."""
    from rcnn_cli.inference.distill import open_calibration

    # A skipped image is always worth a line, even with -q.
    return open_calibration(
        spec,
        split,
        source,
        config,
        lambda message: click.echo(message, err=True),
        max_pixels=max_pixels,
        image_root=image_root,
    )


def _describe(spec, split, proposals, proposal_method) -> str:  # type: ignore[no-untyped-def]
    """Where the distillation images came from, as recorded in the checkpoint ("" without them)."""
    if spec is None:
        return ""
    where = f"{spec}" + (f" --split {split}" if split else "")
    return where + (f" --proposals {proposals}" if proposals else f" --proposal-method {proposal_method}")
