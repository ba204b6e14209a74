"""``rcnn propose`` through the CLI: outputs, resume, refusal, bad images, shards, eval, methods."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner
from PIL import Image

from rcnn_cli.cli.main import cli
from rcnn_cli.data import make_synthetic_voc


def _scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.normal(120, 8, size=(60, 80, 3)).clip(0, 255).astype(np.uint8)
    image[10:40, 15:50] = (220, 40, 40)
    return image


def _huge_png_header(path: Path, width: int = 9000, height: int = 9000) -> None:
    """A PNG whose header claims 81 megapixels (no pixel data needed: size is checked first)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def _images(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(_scene(i)).save(folder / f"img{i}.jpg", quality=95)
    return folder


def _run(*args: str) -> object:
    return CliRunner().invoke(cli, ["-q", "propose", *args])


def test_writes_one_file_per_image_and_a_manifest_then_resumes(tmp_path: Path) -> None:
    images = _images(tmp_path / "images")
    out = tmp_path / "props"
    result = _run(str(images), "-o", str(out), "--mode", "single")
    assert result.exit_code == 0, result.output
    assert "2 images written, 0 already done, 0 bad" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "proposals" and manifest["params"]["method"] == "selective-search"
    assert manifest["params"]["mode"] == "single" and manifest["package_version"]
    with np.load(out / "img0.npz") as data:
        boxes, scores = data["boxes"], data["scores"]
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and len(boxes) == len(scores) > 0
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 80).all() and (boxes[:, 3] <= 60).all()
    again = _run(str(images), "-o", str(out), "--mode", "single")
    assert again.exit_code == 0 and "0 images written, 2 already done" in again.output
    # A removed file (an interrupted run) is recomputed, the others are not.
    (out / "img1.npz").unlink()
    third = _run(str(images), "-o", str(out), "--mode", "single")
    assert "1 images written, 1 already done" in third.output


def test_other_settings_into_the_same_folder_are_refused(tmp_path: Path) -> None:
    images = _images(tmp_path / "images", 1)
    out = tmp_path / "props"
    assert _run(str(images), "-o", str(out), "--method", "dense").exit_code == 0
    result = _run(str(images), "-o", str(out), "--method", "dense", "--max-proposals", "10")
    assert result.exit_code == 1
    assert "Error:" in result.output and "max_proposals: 2000 on disk, 10 now" in result.output
    assert "--overwrite" in result.output and "Traceback" not in result.output
    redo = _run(str(images), "-o", str(out), "--method", "dense", "--max-proposals", "10", "--overwrite")
    assert redo.exit_code == 0, redo.output
    with np.load(out / "img0.npz") as data:
        assert len(data["boxes"]) == 10


def test_bad_images_are_named_skipped_and_counted(tmp_path: Path) -> None:
    folder = _images(tmp_path / "images", 1)
    Image.fromarray(_scene(5)[:, :, 0]).save(folder / "grey.png")
    Image.fromarray(np.dstack([_scene(6), np.full((60, 80), 255, np.uint8)])).save(folder / "rgba.png")
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image")
    good = (folder / "img0.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    _huge_png_header(folder / "huge.png")
    out = tmp_path / "props"
    result = CliRunner().invoke(cli, ["propose", str(folder), "-o", str(out), "--mode", "single"])
    assert result.exit_code == 0, result.output
    for name in ("zero.jpg", "text.jpg", "truncated.jpg", "huge.png"):
        assert name in result.output
    assert "3 images written, 0 already done, 4 bad (skipped)" in result.output
    assert {p.name for p in out.glob("*.npz")} == {"img0.npz", "grey.npz", "rgba.npz"}

    stop = _run(str(folder), "-o", str(tmp_path / "stop"), "--mode", "single", "--on-error", "stop")
    assert stop.exit_code == 1 and "Error:" in stop.output and "Traceback" not in stop.output
    assert any(name in stop.output for name in ("zero.jpg", "text.jpg", "truncated.jpg", "huge.png"))


def test_shards_share_one_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = _images(tmp_path / "images", 5)
    out = tmp_path / "props"
    first = _run(str(images), "-o", str(out), "--method", "dense", "--shard", "0/2")
    assert first.exit_code == 0 and "3 images written" in first.output
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    second = _run(str(images), "-o", str(out), "--method", "dense")
    assert second.exit_code == 0 and "2 images written, 0 already done" in second.output
    assert len(list(out.glob("*.npz"))) == 5
    bad = _run(str(images), "-o", str(out), "--method", "dense", "--shard", "2/2")
    assert bad.exit_code == 1 and "--shard 2/2" in bad.output


def test_workers_write_the_same_files_as_one_process(tmp_path: Path) -> None:
    images = _images(tmp_path / "images", 3)
    one, two = tmp_path / "one", tmp_path / "two"
    assert _run(str(images), "-o", str(one), "--mode", "single").exit_code == 0
    result = _run(str(images), "-o", str(two), "--mode", "single", "--workers", "2")
    assert result.exit_code == 0, result.output
    for name in ("img0.npz", "img1.npz", "img2.npz"):
        with np.load(one / name) as a, np.load(two / name) as b:
            np.testing.assert_array_equal(a["boxes"], b["boxes"])


def test_eval_on_a_voc_dataset(tmp_path: Path) -> None:
    root = make_synthetic_voc(tmp_path / "voc", num_images=4, image_size=(96, 72), seed=1)
    result = _run(str(root), "--split", "test", "-o", str(tmp_path / "props"), "--mode", "single", "--eval")
    assert result.exit_code == 0, result.output
    assert "recall@0.5" in result.output and "MABO" in result.output
    no_gt = _run(
        str(_images(tmp_path / "plain", 1)), "-o", str(tmp_path / "p2"), "--method", "dense", "--eval"
    )
    assert no_gt.exit_code == 1 and "ground truth" in no_gt.output


def test_file_method_imports_demo_style_mat(tmp_path: Path) -> None:
    images = _images(tmp_path / "images", 2)
    mats = tmp_path / "mats"
    mats.mkdir()
    for i in range(2):
        boxes = np.array([[0, 0, 79, 59], [15, 10, 49, 39]], np.uint16)  # 0-based inclusive x1 y1 x2 y2
        scipy.io.savemat(mats / f"img{i}_boxes.mat", {"boxes": boxes})
    out = tmp_path / "props"
    result = _run(str(images), "-o", str(out), "--method", "file", "--from", str(mats))
    assert result.exit_code == 0, result.output
    with np.load(out / "img0.npz") as data:
        assert data["boxes"].tolist() == [[0, 0, 80, 60], [15, 10, 50, 40]]
    missing = _run(str(images), "-o", str(tmp_path / "p2"), "--method", "file")
    assert missing.exit_code == 1 and "--from" in missing.output


def test_opencv_method_without_contrib_says_what_to_install(tmp_path: Path) -> None:
    import cv2

    if hasattr(cv2, "ximgproc"):
        pytest.skip("OpenCV contrib is installed here")
    result = _run(str(_images(tmp_path / "images", 1)), "-o", str(tmp_path / "p"), "--method", "opencv")
    assert result.exit_code == 1 and "pip install opencv-contrib-python-headless" in result.output


FAST_RCNN_DEMO = Path(__file__).resolve().parents[3] / "shared" / "data" / "fastrcnn_demo"


@pytest.mark.skipif(
    not FAST_RCNN_DEMO.is_dir(), reason=f"{FAST_RCNN_DEMO} not present (team data, not shipped)"
)
def test_file_method_imports_the_original_fast_rcnn_demo_mat_files(tmp_path: Path) -> None:
    out = tmp_path / "props"
    result = _run(str(FAST_RCNN_DEMO), "-o", str(out), "--method", "file", "--from", str(FAST_RCNN_DEMO))
    assert result.exit_code == 0, result.output
    for image_id in ("000004", "001551"):
        with np.load(out / f"{image_id}.npz") as data:
            height, width = data["image_size"].tolist()
            boxes = data["boxes"]
        assert len(boxes) > 1000  # the release ships ~2000 Selective Search boxes per image
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
