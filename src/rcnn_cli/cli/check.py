"""``rcnn check``: report every bad annotation and image of a dataset; optionally write it as COCO JSON."""

from __future__ import annotations

from pathlib import Path

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.options import image_root_option, max_pixels_option, on_error_option


@click.command(
    epilog="""\b
Examples:
  rcnn check data/bccd                          # every annotation file of a VOC folder
  rcnn check data/bccd --split trainval --classes WBC,RBC,Platelets   # your order of the class ids
  rcnn check annotations.json --image-root images/
  rcnn check data/bccd --split test --to-coco bccd_test.json   # VOC -> COCO JSON (good boxes only)

Exit code 0 when nothing is wrong, 1 when problems were found (each printed with its file).
""",
)
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--split", default=None, help="VOC split (ImageSets/Main/SPLIT.txt); default: every annotation."
)
@click.option("--classes", default=None, help="Comma-separated class list; default: names found, sorted.")
@image_root_option
@on_error_option("skip: report every problem; stop: stop at the first with a one-line error.")
@max_pixels_option
@click.option(
    "--decode/--no-decode", default=True, show_default=True, help="Decode every image (slower, thorough)."
)
@click.option(
    "--to-coco",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the good images and boxes as COCO JSON (file_name relative to the dataset root).",
)
@user_errors
def check(
    dataset: Path,
    split: str | None,
    classes: str | None,
    image_root: Path | None,
    on_error: str,
    max_pixels: int,
    decode: bool,
    to_coco: Path | None,
) -> None:
    """Check a dataset (a VOC folder, COCO JSON or images): bad boxes, unknown classes, bad images."""
    from rcnn_cli.data import open_dataset
    from rcnn_cli.data.coco import write_coco
    from rcnn_cli.data.validate import check_records
    from rcnn_cli.progress import Reporter

    context = get_context()
    class_names = [name.strip() for name in classes.split(",") if name.strip()] if classes else None
    policy = "raise" if on_error == "stop" else "skip"
    loaded = open_dataset(
        dataset, split, class_names=class_names, image_root=image_root, on_error=policy, max_pixels=max_pixels
    )
    verbosity = context.verbosity if decode else 0
    with Reporter("check", total=len(loaded.records), verbosity=verbosity) as reporter:
        report = check_records(
            loaded,
            decode=decode,
            on_error=policy,
            max_pixels=max_pixels,
            on_image=lambda _path: reporter.advance(),
        )
    for problem in report.problems:
        click.echo(str(problem))
    for line in report.summary_lines():
        click.echo(line)
    if to_coco is not None:
        write_coco(report.dataset, to_coco)
        click.echo(f"wrote {to_coco}")
    if not report.ok:
        raise SystemExit(1)
