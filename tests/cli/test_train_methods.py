"""R-CNN and SPPnet through the command line (issue 13): ``rcnn train --method rcnn|sppnet``, then
``rcnn detect``, ``rcnn evaluate`` and ``rcnn compress`` with their models, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--fc-dims", "32,32", "-R", "32", "--iters", "3", "--warmup", "1"]


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["-q", "--device", "cpu", *args])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_voc_with_proposals(tmp_path_factory.mktemp("methods"))


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    voc, props = str(data / "voc"), str(data / "props")
    return [
        "train",
        "--dataset",
        voc,
        "--split",
        "trainval",
        "--proposals",
        props,
        "-o",
        str(out),
        *TINY,
        *extra,
    ]


@pytest.fixture(scope="module")
def rcnn_model(data: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rcnn") / "run"
    result = run(*train_args(data, out, "--method", "rcnn", "--warp-size", "32"))
    assert result.exit_code == 0, result.output
    assert "4 training stages (1-finetune, 2-region-features, 3-svm, 4-box-regression)" in result.output
    return out / "model.pt"


def detect_and_evaluate(data: Path, model: Path, out: Path) -> None:
    args = ["--dataset", str(data / "voc"), "--split", "test", "--proposals", str(data / "props")]
    result = run("detect", *args, "--model", str(model), "-o", str(out), "--timing")
    assert result.exit_code == 0, result.output
    result = run("evaluate", "--detections", str(out), "--dataset", str(data / "voc"), "--split", "test")
    assert result.exit_code == 0, result.output
    assert "VOC07 AP" in result.output


def test_rcnn_model_detects_evaluates_and_compresses(data, rcnn_model, tmp_path) -> None:
    detect_and_evaluate(data, rcnn_model, tmp_path / "dets")
    assert json.loads((tmp_path / "dets" / "detections.json").read_text())  # COCO results, not empty
    result = run("compress", str(rcnn_model), "--svd-ranks", "fc6=8,fc7=8", "-o", str(tmp_path / "svd.pt"))
    assert result.exit_code == 0, result.output
    detect_and_evaluate(data, tmp_path / "svd.pt", tmp_path / "dets_svd")


def test_sppnet_from_a_trained_models_conv_layers(data, rcnn_model, tmp_path) -> None:
    out = tmp_path / "spp"
    result = run(*train_args(data, out, "--method", "sppnet", "--init-from", str(rcnn_model)))
    assert result.exit_code == 0, result.output
    assert "5 training stages (0-conv-features, 1-finetune" in result.output
    detect_and_evaluate(data, out / "model.pt", tmp_path / "dets")
    rows = (out / "metrics.jsonl").read_text()
    again = run(*train_args(data, out, "--method", "sppnet", "--init-from", str(rcnn_model), "--resume"))
    assert again.exit_code == 0, again.output
    assert (out / "metrics.jsonl").read_text() == rows  # every stage kept, the conv maps too


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "sppnet"], "keeps the conv layers fixed: give them trained"),
        (["--method", "rcnn", "--rpn"], "--method rcnn trains on proposals from a folder; it has no RPN"),
        (["--method", "rcnn", "--features", "feats"], "--method rcnn runs the CNN on every warped region"),
        (["--method", "rcnn", "--warp-size", "20", "--context-padding", "10"], "the padding must leave"),
    ],
)
def test_refusals_are_one_line(data, tmp_path, extra, message) -> None:
    result = run(*train_args(data, tmp_path / "run", *extra))
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_sppnet_multi_scale_pools_each_region_at_its_scale(data, rcnn_model, tmp_path) -> None:
    """SPPnet's multi-scale option at two small scales: stage 0 keeps a map per scale, the model keeps
    the scales, and detection runs the conv layers at each."""
    from rcnn_cli.models import load_checkpoint

    out = tmp_path / "spp"
    result = run(
        *train_args(data, out, "--method", "sppnet", "--init-from", str(rcnn_model), "--scales", "64,96")
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "0-conv-features" / "manifest.json").read_text())
    assert manifest["params"]["scales"] == [64, 96]
    model, _ = load_checkpoint(out / "model.pt")
    assert model.config.scales == (64, 96)
    detect_and_evaluate(data, out / "model.pt", tmp_path / "dets")


def test_a_rerun_with_other_svm_settings_is_refused_not_mixed(data, rcnn_model) -> None:
    out = rcnn_model.parent
    result = run(
        *train_args(data, out, "--method", "rcnn", "--warp-size", "32", "--resume", "--svm-c", "0.01")
    )
    assert result.exit_code != 0
    assert f"{out / '3-svm'}: made with other settings (C: 0.001 on disk, 0.01 now)" in result.output
    rows = (out / "metrics.jsonl").read_text()
    again = run(*train_args(data, out, "--method", "rcnn", "--warp-size", "32", "--resume"))
    assert again.exit_code == 0, again.output
    assert (out / "metrics.jsonl").read_text() == rows  # the same settings: every stage kept, none redone
