"""``--max-pixels``: every command that reads images takes it, and the "image too large" message that
tells the user to raise it is then true. The limit holds from loading (headers) to decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rcnn_cli.cli.main import cli
from rcnn_cli.data import ImageRecord, make_synthetic_voc, open_dataset, read_record
from rcnn_cli.errors import DataError
from rcnn_cli.proposals.jitter import write_jittered_proposals
from support.inference import small_checkpoint, write_images

pytestmark = pytest.mark.usefixtures("one_thread")
TOO_LARGE = "above the limit of 0.001 megapixels (raise it with --max-pixels)"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("max_pixels")
    write_images(root / "images", 2)
    make_synthetic_voc(root / "voc", 4, image_size=(64, 48), min_size=10)
    write_jittered_proposals(root / "props", open_dataset(root / "voc").records, num_random=10)
    small_checkpoint(root / "model.pt")
    return root


def _commands(d: Path, out: Path) -> dict[str, list[str]]:
    images, voc = str(d / "images"), str(d / "voc")
    return {
        "propose": ["propose", images, "--method", "dense", "-o", str(out)],
        "detect": ["detect", images, "--model", str(d / "model.pt"), "--proposal-method", "dense",
                   "-o", str(out)],
        "extract": ["extract", voc, "-o", str(out)],
        "train": ["train", "--dataset", voc, "--proposals", str(d / "props"), "-o", str(out), "--iters", "1"],
        "evaluate": ["evaluate", "--dataset", voc, "--proposals", str(d / "props")],
        "compress": ["compress", str(d / "model.pt"), "-o", str(out / "m.pt"), "--svd-rank", "8",
                     "--distill-on", images, "--proposal-method", "dense"],
        "check": ["check", images],
    }  # fmt: skip


@pytest.mark.parametrize(
    "command", ["propose", "detect", "extract", "train", "evaluate", "compress", "check"]
)
def test_every_image_command_takes_max_pixels_and_says_so(data: Path, tmp_path: Path, command: str) -> None:
    args = _commands(data, tmp_path / "out")[command]
    result = CliRunner().invoke(cli, ["--device", "cpu", *args, "--max-pixels", "1000"])
    assert result.exit_code in (0, 1), result.output  # 2 would be click refusing the option
    assert "Traceback" not in result.output
    assert TOO_LARGE in result.output, result.output  # the 64x48 images are refused, with the hint


def test_raising_the_limit_lets_a_larger_image_through_loading_and_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big" / "flat.png"  # 52 MP of one colour: a 160 kB file
    path.parent.mkdir()
    Image.new("RGB", (8000, 6500), (90, 120, 200)).save(path)
    out = tmp_path / "props"
    refused = CliRunner().invoke(cli, ["propose", str(path), "--mode", "single", "-o", str(out)])
    assert "52.0 megapixels, above the limit of 50 megapixels (raise it with --max-pixels)" in refused.output
    args = ["propose", str(path), "--mode", "single", "-o", str(out), "--max-pixels", "60000000"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "1 images written" in result.output, result.output
    with np.load(out / "flat.npz") as saved:
        assert saved["image_size"].tolist() == [6500, 8000]
        assert saved["boxes"].tolist() == [[0, 0, 8000, 6500]]  # segmented small, reported full size


def test_records_carry_the_limit_they_were_loaded_with(data: Path) -> None:
    (record,) = open_dataset(data / "images" / "img0.jpg", max_pixels=4000).records
    assert record.max_pixels == 4000 and read_record(record).shape == (48, 64, 3)
    smaller = ImageRecord(record.image_id, record.path, 64, 48, max_pixels=3000)
    with pytest.raises(DataError, match=r"above the limit of 0\.003 megapixels"):
        read_record(smaller)
