"""The ``rcnn`` group: global options and the list of subcommands."""

from __future__ import annotations

import click

from rcnn_cli import __version__
from rcnn_cli.cli.check import check
from rcnn_cli.cli.compare import compare
from rcnn_cli.cli.compress import compress
from rcnn_cli.cli.detect import detect
from rcnn_cli.cli.evaluate import evaluate
from rcnn_cli.cli.export import export
from rcnn_cli.cli.extract import extract
from rcnn_cli.cli.global_options import accept_after_command, context_of, root_options
from rcnn_cli.cli.propose import propose
from rcnn_cli.cli.show import show
from rcnn_cli.cli.train import train


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """rcnn VERSION, then the build's own line: a CUDA build and a CPU one look alike otherwise."""
    if not value or ctx.resilient_parsing:
        return
    from rcnn_cli.ops import build_summary  # imports torch: only when asked

    click.echo(f"rcnn, version {__version__}")
    click.echo(build_summary())
    ctx.exit()


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="""\b
Example, the whole chain in the current folder (each stage reads the previous one's output):
  rcnn propose data/voc            # -> ./proposals
  rcnn train                       # -> ./runs/DATE-fast-rcnn (./runs/latest names it)
  rcnn detect img.jpg              # -> ./detections
\b
The same with every input and output named, on a VOC-layout dataset:
  rcnn check data/voc
  rcnn propose data/voc --split trainval -o props/trainval
  rcnn propose data/voc --split test -o props/test
  rcnn train --dataset data/voc --split trainval --proposals props/trainval --backbone small -o runs/voc
  rcnn detect --dataset data/voc --split test --model runs/voc/model.pt --proposals props/test -o dets/
  rcnn compress runs/voc/model.pt -o runs/voc/model_svd.pt --svd-ranks fc6=128,fc7=32
  rcnn export runs/voc/model.pt -o model.onnx                          # ONNX (or --format torchscript)
  rcnn evaluate --dataset data/voc --split test --detections dets/detections.json
  rcnn show pooling --dataset data/voc --split test -o pooling.png     # pictures of each stage

--device, -q and -v may also follow the command (rcnn train ... --device cpu); there they win.
""",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and which kernels (CPU, CUDA) rcnn_cli._C was built with, and exit.",
)
@root_options
@click.pass_context
def cli(ctx: click.Context, device: str, quiet: bool, verbose: int) -> None:
    """R-CNN, SPPnet and Fast R-CNN stage by stage: every stage leaves its output on disk."""
    ctx.obj = context_of(device, quiet, verbose)


for command in (propose, extract, train, detect, compress, export, evaluate, check, show, compare):
    accept_after_command(command)  # -q, -v, --device after the command name too
    cli.add_command(command)


def main() -> None:
    cli(prog_name="rcnn")


if __name__ == "__main__":
    main()
