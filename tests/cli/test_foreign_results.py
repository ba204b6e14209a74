"""No stage silently reuses results made from other images that merely share their ids (issue:
reliability). Each case runs through the CLI and names the file in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rcnn_cli.cli.main import cli
from rcnn_cli.data import make_synthetic_voc
from support.inference import small_checkpoint


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["-q", *args])


def _photos(folder: Path, seed: int, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.normal(120, 30, size=(48, 64, 3)).clip(0, 255).astype(np.uint8)
        pixels[10:30, 15:40] = (220, 40, 40)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


def _mirror_images(root: Path) -> None:
    for path in (root / "JPEGImages").iterdir():
        Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(path, quality=95)


def test_propose_into_a_folder_of_other_images_with_the_same_ids_is_refused(tmp_path: Path) -> None:
    props = str(tmp_path / "props")
    assert _run("propose", str(_photos(tmp_path / "a", 0)), "-o", props, "--mode", "single").exit_code == 0
    result = _run("propose", str(_photos(tmp_path / "b", 1)), "-o", props, "--mode", "single")
    assert result.exit_code == 1, result.output
    assert "img0.npz: made from another image" in result.output and "already done" not in result.output
    # --overwrite replaces them, and a rerun then resumes on B.
    assert _run("propose", str(tmp_path / "b"), "-o", props, "--mode", "single", "--overwrite").exit_code == 0
    again = CliRunner().invoke(cli, ["propose", str(tmp_path / "b"), "-o", props, "--mode", "single"])
    assert "0 images written, 2 already done" in again.output


@pytest.mark.usefixtures("one_thread")
def test_train_on_a_mirrored_copy_refuses_the_unmirrored_proposals(tmp_path: Path) -> None:
    root = make_synthetic_voc(tmp_path / "voc", 4, seed=3, image_size=(96, 72), min_size=16)
    props = str(tmp_path / "props")
    assert _run("propose", str(root), "--split", "trainval", "-o", props, "--mode", "single").exit_code == 0
    mirrored = tmp_path / "voc_mirrored"
    shutil.copytree(root, mirrored)
    _mirror_images(mirrored)
    train = ["--device", "cpu", "train", "--dataset", str(mirrored), "--split", "trainval", "--proposals"]
    result = _run(*train, props, "-o", str(tmp_path / "run"), "--iters", "1", "--fc-dims", "16,16")
    assert result.exit_code == 1, result.output
    assert "made from another image" in result.output and str(mirrored) in result.output
    assert result.output.count("\n") == 1


def test_detect_never_keeps_or_reads_results_of_other_images(tmp_path: Path) -> None:
    model = str(small_checkpoint(tmp_path / "m.pt"))
    a, b = _photos(tmp_path / "a", 0), _photos(tmp_path / "b", 1)
    props_a = str(tmp_path / "props_a")
    assert _run("propose", str(a), "-o", props_a, "--mode", "single").exit_code == 0
    first = _run("detect", str(a), "--model", model, "--proposals", props_a, "-o", str(tmp_path / "d1"))
    assert first.exit_code == 0, first.output

    # B's images under A's proposals: refused, naming the proposals file.
    stale = _run("detect", str(b), "--model", model, "--proposals", props_a, "-o", str(tmp_path / "d2"))
    assert stale.exit_code == 1 and "props_a/img0.npz: made from another image" in stale.output

    # The same settings on B into a folder of A's detections: A's per-image results are not resumed.
    on_the_fly = ["--model", model, "--proposal-method", "dense", "-o", str(tmp_path / "d3")]
    assert _run("detect", str(a), *on_the_fly).exit_code == 0
    foreign = _run("detect", str(b), *on_the_fly)
    assert foreign.exit_code == 1, foreign.output
    assert "per_image/img0.json: made from another image" in foreign.output
    assert _run("detect", str(b), *on_the_fly, "--overwrite").exit_code == 0


def test_detect_refuses_a_proposals_folder_without_a_manifest(tmp_path: Path) -> None:
    model = str(small_checkpoint(tmp_path / "m.pt"))
    images = _photos(tmp_path / "a", 0)
    (tmp_path / "loose").mkdir()
    result = _run(
        "detect",
        str(images),
        "--model",
        model,
        "--proposals",
        str(tmp_path / "loose"),
        "-o",
        str(tmp_path / "d"),
    )
    assert result.exit_code == 1 and "no manifest.json" in result.output
