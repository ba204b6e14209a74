"""``rcnn export``: a Fast R-CNN model as ONNX or TorchScript, from image + proposals to scores and
boxes; a Faster R-CNN from the image alone (the engine: :mod:`rcnn_cli.inference.export`)."""

from __future__ import annotations

from pathlib import Path

import click

from rcnn_cli.cli.common import get_context, user_errors


@click.command(
    epilog="""\b
Examples:
  rcnn export                                   # the latest run's model.pt -> model.onnx beside it
  rcnn export runs/bccd/model.pt -o model.onnx
  rcnn export runs/bccd/model.pt -o model.ts --format torchscript
  rcnn compress runs/bccd/model.pt -o runs/bccd/model_svd.pt --svd-ranks fc6=128,fc7=32
  rcnn export runs/bccd/model_svd.pt -o model_svd.onnx    # truncated-SVD layers export too
  rcnn export runs/faster/model.pt -o faster.onnx          # Faster R-CNN: the image alone in
Inputs: image float32 [1, 3, H, W] (scaled, normalized as rcnn detect does), proposals float32 [R, 4]
(original pixels), image_size int64 [2] (original height, width), im_scale float32 [1]. Outputs: scores
[R, K] (softmax, background dropped) and boxes [R, K, 4] (decoded, clipped, original pixels). H, W and R
are dynamic; the score threshold and per-class NMS stay with the caller (docs/FORMATS.md). A Faster
R-CNN has no proposals input: its RPN proposes inside the graph, and its outputs are proposals [P, 4]
(original pixels), scores [P, K] and boxes [P, K, 4]. R-CNN and SPPnet models take Fast R-CNN's inputs
(R-CNN: the image at its own size, im_scale 1); their scores are the SVM margins through a logistic.
The file
holds the class names and preprocessing as metadata (rcnn_cli.json). A TorchScript file calls this
package's kernels: `import rcnn_cli._C` before torch.jit.load. ONNX needs `pip install rcnn-cli[export]`.
""",
)
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="[MODEL with .onnx, or .torchscript.pt with --format torchscript]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "torchscript"]),
    default=None,
    help="[from -o: .onnx is ONNX, any other suffix TorchScript; onnx without -o]",
)
@user_errors
def export(model: Path | None, output: Path | None, fmt: str | None) -> None:
    """Export a Fast R-CNN, Faster R-CNN, R-CNN or SPPnet model (MODEL: the latest run's model.pt when
    left out) as ONNX or TorchScript.

    The written file is checked first: run (onnxruntime, or torch.jit.load) on an image size and proposal
    count it was not traced with, it must give the model's scores and boxes (and proposals)."""
    from rcnn_cli.cli.defaults import export_paths
    from rcnn_cli.inference.export import export_model

    ctx = get_context()
    model, output, fmt = export_paths(model, output, fmt)
    log = (lambda m: click.echo(m, err=True)) if ctx.verbosity > 0 else (lambda _m: None)
    result = export_model(model, output, fmt, log=log)
    click.echo(
        f"{result.format} model -> {output} ({result.seconds:.1f} s); checked on {result.check}: "
        f"max |difference| {result.score_error:.1e} in scores, {result.box_error:.1e} px in boxes"
    )
