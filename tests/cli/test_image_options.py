"""``--max-pixels`` and ``--image-root`` on every command that reads a dataset; ``--image-root`` finds a
COCO JSON's images elsewhere than the JSON says, and is refused for what is not COCO."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.data import make_synthetic_voc, open_dataset, write_coco

pytestmark = pytest.mark.usefixtures("one_thread")


#: Commands that read no image of the user's: export checks the written file on a picture it makes.
READS_NO_IMAGES = {("export",)}


def dataset_commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under ``group`` that reads images (compress: those of --distill-on)."""
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += dataset_commands(command, (*path, name))
        elif (*path, name) not in READS_NO_IMAGES:
            found.append((*path, name))
    return found


@pytest.mark.parametrize("path", dataset_commands(), ids=" ".join)
def test_help_lists_max_pixels_and_image_root(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "--max-pixels" in result.output and "--image-root" in result.output


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    """``coco/train.json`` whose images are not where its ``info.image_root`` says but in ``moved/``."""
    root = tmp_path_factory.mktemp("coco")
    voc = make_synthetic_voc(root / "voc", 4, image_size=(64, 48), min_size=10)
    write_coco(open_dataset(voc), root / "coco" / "train.json")
    shutil.move(str(voc), str(root / "moved"))
    return root


def test_a_coco_dataset_with_its_images_elsewhere(coco: Path, tmp_path: Path) -> None:
    annotations = str(coco / "coco" / "train.json")
    info = json.loads((coco / "coco" / "train.json").read_text())["info"]
    assert not (coco / "coco" / info["image_root"]).exists()  # where the JSON says: gone
    propose = ["-q", "propose", annotations, "--method", "dense", "-o", str(tmp_path / "p")]
    lost = CliRunner().invoke(cli, propose)
    assert lost.exit_code == 1 and "0 images written" in lost.output, lost.output
    found = CliRunner().invoke(cli, [*propose, "--image-root", str(coco / "moved")])
    assert found.exit_code == 0 and "4 images written" in found.output, found.output
    evaluate = ["evaluate", "--dataset", annotations, "--proposals", str(tmp_path / "p")]
    result = CliRunner().invoke(cli, [*evaluate, "--image-root", str(coco / "moved")])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output


def test_image_root_is_for_coco_only(coco: Path, tmp_path: Path) -> None:
    args = ["propose", str(coco / "moved"), "--image-root", str(coco), "-o", str(tmp_path / "p")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.output.strip().endswith("applies to a COCO JSON dataset only")
    assert len(result.output.strip().splitlines()) == 1
