"""An image a stage skips for a stated reason is skipped, with the same line, by every later stage;
a run that did nothing at all exits with an error (issue: reliability, the dead end and exit codes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from rcnn_cli.cli.main import cli
from support.inference import small_checkpoint


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args))


def _folder(tmp_path: Path, good: int = 1, truncated: int = 1) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(good + truncated):
        path = folder / f"img{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path, quality=95)
        if i >= good:  # the header still says 64x48, the pixels stop half way
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return folder


def _skip_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("skipped:")]


def test_a_skipped_image_is_skipped_with_the_same_line_by_every_later_stage(tmp_path: Path) -> None:
    images, props = _folder(tmp_path), str(tmp_path / "props")
    first = _run("propose", str(images), "-o", props, "--mode", "single")
    assert first.exit_code == 0, first.output
    (line,) = _skip_lines(first.output)
    assert "img1.jpg" in line and "1 images written" in first.output

    again = _run("propose", str(images), "-o", props, "--mode", "single")
    assert again.exit_code == 0 and _skip_lines(again.output) == [line]
    assert "1 already done" in again.output

    model = str(small_checkpoint(tmp_path / "m.pt"))
    detect = _run("detect", str(images), "--model", model, "--proposals", props, "-o", str(tmp_path / "d"))
    assert detect.exit_code == 0, detect.output
    assert _skip_lines(detect.output) == [line]
    assert "1 images (0 resumed, 1 skipped)" in detect.output


def test_a_fixed_image_is_proposed_again(tmp_path: Path) -> None:
    images, props = _folder(tmp_path), str(tmp_path / "props")
    assert _run("propose", str(images), "-o", props, "--mode", "single").exit_code == 0
    Image.new("RGB", (64, 48), (200, 10, 10)).save(images / "img1.jpg")
    fixed = _run("propose", str(images), "-o", props, "--mode", "single")
    assert fixed.exit_code == 0 and not _skip_lines(fixed.output)
    assert "1 images written, 1 already done" in fixed.output
    assert not list(Path(props).glob("*.skipped.json"))


def test_nothing_done_is_an_error(tmp_path: Path) -> None:
    images = _folder(tmp_path, good=0, truncated=2)
    propose = _run("propose", str(images), "-o", str(tmp_path / "props"), "--mode", "single")
    assert propose.exit_code == 1, propose.output
    assert "every one was bad" in propose.output

    model = str(small_checkpoint(tmp_path / "m.pt"))
    detect = _run(
        "detect", str(images), "--model", model, "--proposal-method", "dense", "-o", str(tmp_path / "d")
    )
    assert detect.exit_code == 1, detect.output
    assert "all 2 images were skipped" in detect.output
