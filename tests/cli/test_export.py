"""``rcnn export`` end to end: the exported ONNX model plus the caller's share (threshold, per-class NMS)
gives ``rcnn detect``'s detections; paths and format from the defaults; refusals in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.models import default_config, save_checkpoint
from support.inference import small_checkpoint, write_images, write_proposals

pytestmark = pytest.mark.usefixtures("one_thread")

BOXES = np.array([[2, 2, 30, 30], [10, 5, 50, 40], [30, 20, 62, 46], [0, 0, 64, 48]], dtype=np.float32)


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_exported_onnx_plus_nms_gives_the_detections_of_rcnn_detect(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from rcnn_cli.data.images import read_image
    from rcnn_cli.inference.export import network_inputs
    from rcnn_cli.inference.postprocess import PostprocessConfig, select_detections
    from rcnn_cli.models import load_checkpoint

    model = small_checkpoint(tmp_path / "model.pt")
    result = CliRunner().invoke(cli, ["export", str(model), "-o", str(tmp_path / "model.onnx")])
    assert result.exit_code == 0, result.output
    assert "onnx model -> " in result.output and "max |difference|" in result.output

    write_images(tmp_path / "images", 2)
    props = write_proposals(tmp_path / "props", ["img0", "img1"], BOXES)
    args = ["detect", str(tmp_path / "images"), "--model", str(model), "--proposals", str(props)]
    detected = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "dets")])
    assert detected.exit_code == 0, detected.output
    expected = json.loads((tmp_path / "dets" / "detections.json").read_text())

    config = load_checkpoint(model)[1]["config"]
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    found = []
    for image_id in ("img0", "img1"):
        inputs = network_inputs(read_image(tmp_path / "images" / f"{image_id}.jpg"), BOXES, config)
        scores, boxes = session.run(["scores", "boxes"], inputs)
        dets = select_detections(torch.from_numpy(scores), torch.from_numpy(boxes), PostprocessConfig())
        for box, score, label in zip(
            dets.boxes.tolist(), dets.scores.tolist(), dets.labels.tolist(), strict=True
        ):
            found.append((image_id, label, [box[0], box[1], box[2] - box[0], box[3] - box[1]], score))
    assert len(expected) > 0
    assert [(d["image_id"], d["category_id"]) for d in expected] == [(i, k) for i, k, _, _ in found]
    np.testing.assert_allclose([d["bbox"] for d in expected], [b for _, _, b, _ in found], atol=0.01)
    np.testing.assert_allclose([d["score"] for d in expected], [s for _, _, _, s in found], atol=1e-5)


def test_a_faster_rcnn_exported_as_onnx_plus_nms_gives_the_detections_of_rcnn_detect(tmp_path: Path) -> None:
    """From the image alone: the graph's RPN proposes, and the caller's threshold and per-class NMS on its
    scores and boxes give what ``rcnn detect`` (no proposals given) writes."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from rcnn_cli.data.images import read_image
    from rcnn_cli.inference.export import network_inputs
    from rcnn_cli.inference.postprocess import PostprocessConfig, select_detections
    from rcnn_cli.models import load_checkpoint
    from support.export import faster_checkpoint, sample_rgb

    model = faster_checkpoint(tmp_path / "model.pt")
    result = CliRunner().invoke(cli, ["export", str(model), "-o", str(tmp_path / "model.onnx")])
    assert result.exit_code == 0, result.output
    assert "with its RPN's proposals" in result.output
    (tmp_path / "images").mkdir()
    from PIL import Image

    for name, rgb in sample_rgb():
        Image.fromarray(rgb).save(tmp_path / "images" / f"{name}.png")
    detected = CliRunner().invoke(
        cli, ["detect", str(tmp_path / "images"), "--model", str(model), "-o", str(tmp_path / "dets")]
    )
    assert detected.exit_code == 0, detected.output
    expected = json.loads((tmp_path / "dets" / "detections.json").read_text())
    config = load_checkpoint(model)[1]["config"]
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    found = []
    for name, _rgb in sample_rgb():
        inputs = network_inputs(read_image(tmp_path / "images" / f"{name}.png"), BOXES, config)
        del inputs["proposals"]
        _proposals, scores, boxes = session.run(["proposals", "scores", "boxes"], inputs)
        dets = select_detections(torch.from_numpy(scores), torch.from_numpy(boxes), PostprocessConfig())
        found += [
            (name, label, score)
            for score, label in zip(dets.scores.tolist(), dets.labels.tolist(), strict=True)
        ]
    assert len(expected) > 10

    # Near-tied proposals may swap places between runtimes (agreement.py), so the detections are
    # compared as each (image, class)'s sorted scores, not row for row.
    def by_group(triples) -> dict:
        groups: dict = {}
        for image, label, score in triples:
            groups.setdefault((image, label), []).append(score)
        return {key: sorted(values) for key, values in groups.items()}

    want = by_group((d["image_id"], d["category_id"], d["score"]) for d in expected)
    got = by_group(found)
    assert want.keys() == got.keys()
    for key, scores in want.items():
        assert len(got[key]) == len(scores), key
        np.testing.assert_allclose(got[key], scores, atol=2e-5)  # detections.json keeps 5 decimals


def test_defaults_the_latest_run_and_the_format_from_the_suffix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "bccd").mkdir(parents=True)
    small_checkpoint(tmp_path / "runs" / "bccd" / "model.pt")
    (tmp_path / "runs" / "latest").write_text("bccd\n")
    result = CliRunner().invoke(cli, ["export", "--format", "torchscript"])
    assert result.exit_code == 0, result.output
    assert "using ./runs/bccd/model.pt, the latest run" in result.output
    assert (tmp_path / "runs" / "bccd" / "model.torchscript.pt").is_file()
    result = CliRunner().invoke(cli, ["-q", "export", "runs/bccd/model.pt", "-o", "model.ts"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("torchscript model -> model.ts")
    assert torch.jit.load("model.ts") is not None


def test_a_multi_scale_sppnet_is_refused_in_one_line(tmp_path: Path) -> None:
    from rcnn_cli.models import build_model

    config = default_config("small", 2, fc6_dim=8, fc7_dim=8, method="sppnet", scales=(48, 64))
    save_checkpoint(tmp_path / "model.pt", build_model(config).eval(), {"class_names": ["a", "b"]})
    for fmt in ("onnx", "torchscript"):
        out = tmp_path / f"model.{fmt}"
        line = one_line_error(CliRunner().invoke(cli, ["export", str(tmp_path / "model.pt"), "-o", str(out)]))
        assert "is a multi-scale SPPnet model (--scales 48,64)" in line and "single-scale" in line, line
        assert not out.exists()


def test_missing_onnx_packages_are_one_line_with_the_install_command(tmp_path: Path, monkeypatch) -> None:
    model = small_checkpoint(tmp_path / "model.pt")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    line = one_line_error(CliRunner().invoke(cli, ["export", str(model), "-o", str(tmp_path / "m.onnx")]))
    assert "onnxruntime" in line and line.endswith("pip install rcnn-cli[export]"), line


def test_bad_files_and_folders_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    one_line_error(
        CliRunner().invoke(cli, ["export", str(tmp_path / "junk.pt"), "-o", str(tmp_path / "m.ts")])
    )
    model = small_checkpoint(tmp_path / "model.pt")
    line = one_line_error(
        CliRunner().invoke(cli, ["export", str(model), "-o", str(tmp_path / "no" / "m.ts")])
    )
    assert "does not exist" in line
