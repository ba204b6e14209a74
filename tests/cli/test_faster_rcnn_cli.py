"""Faster R-CNN through the command line (issue 12): ``rcnn train --rpn`` / ``--rpn-only`` /
``--rpn-schedule alternating``, ``rcnn propose --method rpn --model``, ``rcnn detect`` without
proposals, ``rcnn compress`` of its fc layers, and the one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.proposals.storage import open_proposals
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--scales", "96", "--max-size", "200", "--fc-dims", "32,32", "-R", "16", "--anchor-scales", "24,48"]


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["-q", "--device", "cpu", *args])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_voc_with_proposals(tmp_path_factory.mktemp("faster"))


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", str(data / "voc"), "--split", "trainval", "-o", str(out), *TINY, *extra]


@pytest.fixture(scope="module")
def faster(data: Path, tmp_path_factory) -> Path:
    """model.pt of a 4-iteration joint run."""
    out = tmp_path_factory.mktemp("joint") / "run"
    result = run(*train_args(data, out, "--rpn", "--iters", "4"))
    assert result.exit_code == 0, result.output
    assert "trained 4 iterations" in result.output
    return out / "model.pt"


def test_faster_model_detects_without_proposals(data, faster, tmp_path) -> None:
    out = tmp_path / "dets"
    args = [
        "detect",
        "--dataset",
        str(data / "voc"),
        "--split",
        "test",
        "--model",
        str(faster),
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(
        cli, ["--device", "cpu", *args, "--timing", "--no-pictures", "--score-threshold", "0.001"]
    )
    assert result.exit_code == 0, result.output
    assert "rpn" in result.output and "proposal_layer" in result.output
    timing = json.loads((out / "timing.json").read_text())["seconds"]
    assert timing["rpn"] > 0 and timing["proposal_layer"] > 0 and timing["proposals"] == 0
    results = json.loads((out / "detections.json").read_text())
    assert results and all(0 <= r["score"] <= 1 for r in results)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["proposals"].startswith("rpn:")


def test_detect_proposal_layer_options_change_the_proposals(data, faster, tmp_path) -> None:
    """--rpn-post-nms-top-n 5 keeps 5 proposals per image, so at most 5 x (classes) detections."""
    out = tmp_path / "few"
    args = ["detect", "--dataset", str(data / "voc"), "--split", "test", "--model", str(faster)]
    result = run(
        *args, "-o", str(out), "--no-pictures", "--rpn-post-nms-top-n", "1", "--score-threshold", "0"
    )
    assert result.exit_code == 0, result.output
    for doc in (out / "per_image").glob("*.json"):
        boxes = [d["box"] for d in json.loads(doc.read_text())["detections"]]
        assert len(boxes) <= 3  # one proposal, one box per class at most (3 shape classes)
    # They only mean something for the model's own RPN.
    other = run(*args, "-o", str(tmp_path / "x"), "--proposals", str(data / "props"), "--rpn-nms-iou", "0.5")
    assert other.exit_code == 1 and "--rpn-nms-iou: set a Faster R-CNN's own proposals" in other.output


def test_rpn_proposals_folder_with_scores_and_recall(data, faster, tmp_path) -> None:
    out = tmp_path / "rpn_props"
    args = ["propose", str(data / "voc"), "--split", "test", "-o", str(out), "--method", "rpn"]
    result = CliRunner().invoke(
        cli, ["--device", "cpu", *args, "--model", str(faster), "--rpn-post-nms-top-n", "20", "--eval"]
    )
    assert result.exit_code == 0, result.output
    assert "recall@0.5" in result.output
    store, manifest = open_proposals(out)
    assert manifest.params["method"] == "rpn"
    assert manifest.params["proposal_layer"]["post_nms_top_n"] == 20
    ids = [p.stem for p in out.glob("*.npz")]
    assert ids
    for image_id in ids:
        stored = store.read(image_id)
        assert 0 < len(stored.boxes) <= 20
        assert np.all(np.diff(stored.scores) <= 0)  # best first, objectness as the score
    again = run(*args, "--model", str(faster), "--rpn-post-nms-top-n", "20")
    assert again.exit_code == 0 and "already done" in again.output


def test_compressed_faster_model_keeps_its_rpn(data, faster, tmp_path) -> None:
    small = tmp_path / "svd.pt"
    result = run("compress", str(faster), "-o", str(small), "--svd-ranks", "fc6=8,fc7=8")
    assert result.exit_code == 0, result.output
    saved = torch.load(small, weights_only=True)
    assert saved["kind"] == "faster_rcnn" and saved["svd_ranks"] == {"fc6": 8, "fc7": 8}
    out = tmp_path / "dets"
    detect = ["detect", "--dataset", str(data / "voc"), "--split", "test", "--model", str(small)]
    assert run(*detect, "-o", str(out), "--no-pictures").exit_code == 0


def test_rpn_alone_feeds_propose_but_not_detect(data, tmp_path) -> None:
    out = tmp_path / "rpn_only"
    result = run(*train_args(data, out, "--rpn-only", "--iters", "2"))
    assert result.exit_code == 0 and "RPN accuracy" in result.output, result.output
    model = out / "model.pt"
    detect = run("detect", "--dataset", str(data / "voc"), "--model", str(model), "-o", str(tmp_path / "d"))
    assert detect.exit_code == 1
    assert "an RPN trained alone" in detect.output and "rcnn propose --method rpn" in detect.output
    props = tmp_path / "p"
    propose = run("propose", str(data / "voc"), "-o", str(props), "--method", "rpn", "--model", str(model))
    assert propose.exit_code == 0, propose.output


def test_fast_rcnn_trained_on_rpn_proposals(data, faster, tmp_path) -> None:
    """The proposals stage's output feeds Fast R-CNN training like any other proposals folder."""
    props = tmp_path / "props"
    assert (
        run(
            "propose", str(data / "voc"), "-o", str(props), "--method", "rpn", "--model", str(faster)
        ).exit_code
        == 0
    )
    out = tmp_path / "run"
    extra = ["--proposals", str(props), "--iters", "2"]
    result = run(*[a for a in train_args(data, out, *extra) if a not in ("--anchor-scales", "24,48")])
    assert result.exit_code == 0, result.output
    assert torch.load(out / "model.pt", weights_only=True)["kind"] == "fast_rcnn"


@pytest.mark.parametrize(
    "extra,code,message",
    [
        (["--rpn", "--proposals", "PROPS"], 1, "--rpn trains on the RPN's own proposals"),
        (["--rpn", "--rpn-only"], 1, "choose one"),
        (["--rpn-schedule", "alternating"], 1, "--rpn-schedule alternating trains a Faster R-CNN: add --rpn"),
        (["--rpn", "--anchor-scales", "big"], 2, "expected comma-separated numbers or 'auto'"),
        (["--rpn", "--anchor-scales", "0,32"], 1, "--anchor-scales: every value must be a positive number"),
        (["--rpn", "--anchor-ratios", "1,1"], 1, "--anchor-ratios: values repeat"),
        (["--rpn", "--rpn-post-nms-top-n", "9000"], 1, "--rpn-post-nms-top-n: 9000 is more than"),
        (["--rpn", "--rpn-nms-iou", "1.5"], 1, "--rpn-nms-iou: must be in (0, 1]"),
        (["--rpn", "--rpn-positive-fraction", "2"], 1, "--rpn-positive-fraction: must be in [0, 1]"),
        (["--rpn", "--target-norm", "empirical"], 1, "--target-norm empirical needs fixed proposals"),
        ([], 1, "no ./proposals: run rcnn propose IMAGES first, or give --proposals FOLDER (or --rpn"),
    ],
)
def test_train_refuses_in_one_line(data, tmp_path, monkeypatch, extra, code, message) -> None:
    monkeypatch.chdir(tmp_path)  # no ./proposals for the default to find
    extra = [str(data / "props") if a == "PROPS" else a for a in extra]
    args = [a for a in train_args(data, tmp_path / "r", *extra)]
    if "--rpn" not in extra and "--rpn-only" not in extra:
        args = [a for a in args if a not in ("--anchor-scales", "24,48")]
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()


def test_propose_rpn_refusals(data, tmp_path) -> None:
    voc = str(data / "voc")
    missing = run("propose", voc, "-o", str(tmp_path / "a"), "--method", "rpn")
    assert missing.exit_code == 1 and "--method rpn needs --model" in missing.output
    fast = tmp_path / "fast"
    assert run(*[a for a in train_args(data, fast, "--proposals", str(data / "props"), "--iters", "1")
                 if a not in ("--anchor-scales", "24,48")]).exit_code == 0  # fmt: skip
    plain = run(
        "propose", voc, "-o", str(tmp_path / "b"), "--method", "rpn", "--model", str(fast / "model.pt")
    )
    assert plain.exit_code == 1 and "a Fast R-CNN without an RPN" in plain.output
    wrong = run("propose", voc, "-o", str(tmp_path / "c"), "--model", str(fast / "model.pt"))
    assert wrong.exit_code == 1 and "--model is for --method rpn" in wrong.output
    # No proposals given: those the model was trained on, or Selective Search when they cannot be redone.
    no_props = run("detect", "--dataset", voc, "--model", str(fast / "model.pt"), "-o", str(tmp_path / "d"))
    assert no_props.exit_code == 0, no_props.output
    assert "(jittered-ground-truth) cannot be computed on the fly" in no_props.output


def test_alternating_schedule_folders_and_resume(data, tmp_path) -> None:
    out = tmp_path / "alt"
    args = train_args(data, out, "--rpn", "--rpn-schedule", "alternating", "--iters", "8")
    result = CliRunner().invoke(cli, ["--device", "cpu", *args])
    assert result.exit_code == 0, result.output
    for step in ("1-rpn", "2-fast-rcnn", "3-rpn", "4-fast-rcnn"):
        rows = (out / step / "metrics.jsonl").read_text().splitlines()
        assert len(rows) == 2, step  # --iters 8 shared out over the 4 steps
    for folder in ("2-proposals", "4-proposals"):
        assert open_proposals(out / folder)[1].params["method"] == "rpn"
    final = torch.load(out / "model.pt", weights_only=True)
    assert final["kind"] == "faster_rcnn"
    step4 = torch.load(out / "4-fast-rcnn" / "model.pt", weights_only=True)
    step3 = torch.load(out / "3-rpn" / "model.pt", weights_only=True)
    step2 = torch.load(out / "2-fast-rcnn" / "model.pt", weights_only=True)
    for key, value in final["state_dict"].items():
        torch.testing.assert_close(value, step4["state_dict"][key], rtol=0, atol=0)
        if key.startswith("backbone."):  # shared conv layers: step 2's, kept fixed in steps 3 and 4
            torch.testing.assert_close(value, step2["state_dict"][key], rtol=0, atol=0)
        if key.startswith("rpn."):  # the RPN: step 3's, fixed in step 4
            torch.testing.assert_close(value, step3["state_dict"][key], rtol=0, atol=0)
    again = CliRunner().invoke(cli, ["--device", "cpu", *args])
    assert again.exit_code == 1 and "--resume" in again.output
    resumed = CliRunner().invoke(cli, ["--device", "cpu", *args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.count("done before, kept") == 4


def test_anchors_that_miss_the_boxes_are_pointed_out(data, tmp_path) -> None:
    args = [a for a in train_args(data, tmp_path / "r", "--rpn", "--iters", "1") if a != "24,48"]
    args[args.index("--anchor-scales") + 1 : args.index("--anchor-scales") + 1] = ["400"]
    result = CliRunner().invoke(cli, ["--device", "cpu", *args])
    assert result.exit_code == 0, result.output
    assert (
        "note: only 0% of the training boxes have an anchor at IoU >= 0.5 with --anchor-scales 400"
        in result.output
    )
    assert "--anchor-scales auto would choose" in result.output
    auto = [a for a in train_args(data, tmp_path / "a", "--rpn", "--iters", "1") if a != "24,48"]
    auto[auto.index("--anchor-scales") + 1 : auto.index("--anchor-scales") + 1] = ["auto"]
    result = CliRunner().invoke(cli, ["--device", "cpu", *auto])
    assert result.exit_code == 0 and "--anchor-scales auto: anchor scales" in result.output
    assert "have an anchor at IoU >= 0.5" in result.output and "note: only" not in result.output
