"""``rcnn detect`` on a folder with a real (small, untrained) checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from support.inference import small_checkpoint, write_images, write_proposals

BOXES = np.array([[2, 2, 30, 30], [10, 5, 50, 40], [30, 20, 62, 46], [0, 0, 64, 48]], dtype=np.float32)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    images = tmp_path / "images"
    write_images(images, 3)
    props = write_proposals(tmp_path / "props", ["img0", "img1", "img2", "bad"], BOXES)
    (images / "bad.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    return images, props, small_checkpoint(tmp_path / "model.pt")


def _detect(images: Path, props: Path, model: Path, out: Path, *extra: str):
    args = ["detect", str(images), "--model", str(model), "--proposals", str(props), "-o", str(out), *extra]
    return CliRunner().invoke(cli, args)


def test_corrupt_image_is_reported_and_the_rest_processed(setup, tmp_path: Path) -> None:
    images, props, model = setup
    result = _detect(images, props, model, tmp_path / "out", "--timing")
    assert result.exit_code == 0, result.output
    assert "bad.jpg" in result.output and "skipped" in result.output
    assert "3 images" in result.output and "1 skipped" in result.output
    for stage in ("conv", "roi_pool", "fc6", "fc7", "head", "nms"):
        assert stage in result.output
    results = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert {d["image_id"] for d in results} <= {"img0", "img1", "img2"}
    assert sorted(p.name for p in (tmp_path / "out" / "pictures").iterdir()) == [
        "img0.jpg",
        "img1.jpg",
        "img2.jpg",
    ]
    for d in results:
        assert d["category_id"] in (1, 2) and d["score"] > 0.05
        x, y, w, h = d["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 64 and y + h <= 48


def test_thresholds_are_options(setup, tmp_path: Path) -> None:
    images, props, model = setup
    result = _detect(
        images, props, model, tmp_path / "a", "--max-detections", "1", "--score-threshold", "0.01"
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "a" / "detections.json").read_text())
    assert len(results) == 3  # one per image


def test_svd_on_the_fly_and_bad_rank(setup, tmp_path: Path) -> None:
    images, props, model = setup
    full = _detect(images, props, model, tmp_path / "full", "--svd-ranks", "fc6=48,fc7=32")  # full rank
    plain = _detect(images, props, model, tmp_path / "plain")
    assert full.exit_code == 0 and plain.exit_code == 0, full.output + plain.output
    a = json.loads((tmp_path / "full" / "detections.json").read_text())
    b = json.loads((tmp_path / "plain" / "detections.json").read_text())
    assert [d["category_id"] for d in a] == [d["category_id"] for d in b]
    np.testing.assert_allclose([d["score"] for d in a], [d["score"] for d in b], atol=1e-4)
    bad = _detect(images, props, model, tmp_path / "bad", "--svd-rank", "33")
    assert bad.exit_code == 1 and "out of range" in bad.output and "Traceback" not in bad.output


def test_proposals_computed_on_the_fly(setup, tmp_path: Path) -> None:
    images, _, model = setup
    args = ["detect", str(images), "--model", str(model), "-o", str(tmp_path / "o"), "--timing"]
    result = CliRunner().invoke(cli, [*args, "--proposal-method", "dense", "--max-proposals", "50"])
    assert result.exit_code == 0, result.output
    assert "3 images" in result.output and "proposals" in result.output
    assert json.loads((tmp_path / "o" / "detections.json").read_text())
    # Neither: the model's training proposals again; this one's meta does not name them, so the fallback.
    neither = CliRunner().invoke(
        cli, ["detect", str(images), "--model", str(model), "-o", str(tmp_path / "n")]
    )
    assert neither.exit_code == 0, neither.output
    assert "note: the model does not say which proposals it was trained on; computing selective-search" in (
        neither.output
    )
    params = json.loads((tmp_path / "n" / "manifest.json").read_text())["params"]
    assert params["proposals"] == "selective-search:fast"
