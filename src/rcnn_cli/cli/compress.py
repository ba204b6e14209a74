"""``rcnn compress``: truncated SVD of fc6/fc7 (Fast R-CNN §3.1) into a new checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.errors import RcnnError


@click.command(
    epilog="""\b
Example (the paper's ranks for VGG16: 1/4 of fc6's width, 1/16 of fc7's):
  rcnn compress runs/voc/model.pt -o runs/voc/model_svd.pt --svd-ranks fc6=1024,fc7=256
The new checkpoint records its ranks: 'rcnn detect --model runs/voc/model_svd.pt' loads it as it is.
""",
)
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--svd-rank", type=int, default=None, help="The same rank t for every fc layer.")
@click.option("--svd-ranks", default=None, help="Per-layer ranks, e.g. fc6=1024,fc7=256.")
@click.option(
    "--rois", default=300, show_default=True, help="RoIs per timed fc pass (the batch the head sees)."
)
@user_errors
def compress(model: Path, output: Path, svd_rank: int | None, svd_ranks: str | None, rois: int) -> None:
    """Factorize fc layers W ≈ U_t Σ_t V_tᵀ: print parameters, reconstruction error and fc time per layer."""
    from rcnn_cli.evaluation.report import print_rows
    from rcnn_cli.inference.compress import compress_checkpoint

    ctx = get_context()
    if svd_rank is None and not svd_ranks:
        raise RcnnError("give --svd-rank T or --svd-ranks fc6=T6,fc7=T7")
    if output.resolve() == model.resolve():
        raise RcnnError(f"{output}: would overwrite the input model; choose another -o")
    rows = compress_checkpoint(model, output, svd_ranks, svd_rank, rois=rois, device=ctx.torch_device())
    print_rows("Truncated SVD", rows)
    click.echo(f"compressed model -> {output}")
