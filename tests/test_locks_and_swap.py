"""Output folders: one writer replaces a folder, many fill it; --overwrite swaps a finished folder in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rcnn_cli.cli.main import cli
from rcnn_cli.errors import ArtifactError
from rcnn_cli.folder_swap import finish_swap, next_folder, swap_in
from rcnn_cli.locks import FolderLock
from support.inference import small_checkpoint
from support.processes import kill_when, start_rcnn


def _photos(folder: Path, n: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.normal(120, 40, size=(size[1], size[0], 3)).clip(0, 255).astype(np.uint8)
        pixels[size[1] // 4 : size[1] // 2, size[0] // 4 : size[0] // 2] = (220, 40, 40)
        Image.fromarray(pixels).save(folder / f"img{i:02d}.png")
    return folder


def test_shared_writers_together_but_never_beside_one_that_replaces(tmp_path: Path) -> None:
    with (
        FolderLock(tmp_path / "f").shared(),
        FolderLock(tmp_path / "f").shared(),
        pytest.raises(ArtifactError, match="being written by another rcnn process"),
    ):
        FolderLock(tmp_path / "f").exclusive()
    with FolderLock(tmp_path / "f").exclusive(), pytest.raises(ArtifactError, match="being replaced"):
        FolderLock(tmp_path / "f").shared()
    FolderLock(tmp_path / "f").exclusive().release()  # all released


def test_propose_overwrite_is_refused_while_another_run_fills_the_folder(tmp_path: Path) -> None:
    images, props = str(_photos(tmp_path / "images", 2)), tmp_path / "props"
    assert (
        CliRunner().invoke(cli, ["-q", "propose", images, "-o", str(props), "--method", "dense"]).exit_code
        == 0
    )
    with FolderLock(props).shared():  # another shard of a run, still working
        same = CliRunner().invoke(cli, ["-q", "propose", images, "-o", str(props), "--method", "dense"])
        assert same.exit_code == 0, same.output  # the same run's shards share the folder
        other = ["-q", "propose", images, "-o", str(props), "--mode", "single", "--overwrite"]
        refused = CliRunner().invoke(cli, other)
        assert refused.exit_code == 1 and "being written by another rcnn process" in refused.output
    manifest = json.loads((props / "manifest.json").read_text())
    assert manifest["params"]["method"] == "dense"  # nothing of the refused run got in
    assert CliRunner().invoke(cli, other).exit_code == 0  # alone, it replaces the folder
    assert json.loads((props / "manifest.json").read_text())["params"]["method"] == "selective-search"


def test_finish_swap_completes_a_swap_killed_between_its_renames(tmp_path: Path) -> None:
    target = tmp_path / "dets"
    next_folder(target).mkdir(parents=True)
    (next_folder(target) / "new").write_text("new")
    old = tmp_path / "dets.rcnn-old"
    old.mkdir()
    (old / "old").write_text("old")  # killed after the first rename: dets is gone
    finish_swap(target)
    assert (target / "new").read_text() == "new" and not old.exists() and not next_folder(target).exists()
    next_folder(target).mkdir()
    (next_folder(target) / "newer").write_text("newer")
    swap_in(target)
    assert [p.name for p in target.iterdir()] == ["newer"]


def _detect(images: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "-q", "--device", "cpu", "detect", str(images), "--model", str(model), "--proposal-method",
        "selective-search", "--proposal-mode", "single", "--no-pictures", "-o", str(out), *extra,
    ]  # fmt: skip


def _finish(args: list[str], log: Path) -> None:
    run = start_rcnn(*args, log=log)
    assert run.wait() == 0, log.read_text()


def test_detect_overwrite_killed_midway_keeps_the_old_results_then_completes(tmp_path: Path) -> None:
    images = _photos(tmp_path / "images", 24, size=(240, 180))
    old_model = small_checkpoint(tmp_path / "old.pt", seed=0)
    new_model = small_checkpoint(tmp_path / "new.pt", seed=1)
    out, reference, log = tmp_path / "dets", tmp_path / "reference", tmp_path / "log.txt"
    _finish(_detect(images, old_model, out), log)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".rcnn.lock"}

    staging = next_folder(out) / "per_image"
    run = start_rcnn(*_detect(images, new_model, out, "--overwrite"), log=log)
    kill_when(run, lambda: staging.is_dir() and len(list(staging.glob("[!.]*.json"))) >= 2, log)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".rcnn.lock"}
    assert after == before  # the old manifest still describes the old detections

    _finish(_detect(images, new_model, out, "--overwrite"), log)
    _finish(_detect(images, new_model, reference), log)
    assert (out / "detections.json").read_bytes() == (reference / "detections.json").read_bytes()
    assert (out / "detections.json").read_bytes() != before["detections.json"]
    assert not next_folder(out).exists() and not (tmp_path / "dets.rcnn-old").exists()
    for name in (p.name for p in (reference / "per_image").iterdir()):
        assert (out / "per_image" / name).read_bytes() == (reference / "per_image" / name).read_bytes()
