"""``rcnn compress`` and the compress -> detect round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from torch import nn

from rcnn_cli.cli.main import cli
from rcnn_cli.models import load_checkpoint
from support.inference import small_checkpoint, write_images, write_proposals

BOXES = np.array([[2, 2, 30, 30], [10, 5, 50, 40], [30, 20, 62, 46], [0, 0, 64, 48]], dtype=np.float32)


def test_compress_prints_the_table_and_records_ranks(tmp_path: Path) -> None:
    model = small_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "small.pt"
    result = CliRunner().invoke(cli, ["compress", str(model), "-o", str(out), "--svd-ranks", "fc6=8,fc7=4"])
    assert result.exit_code == 0, result.output
    for word in ("fc6", "fc7", "params_before", "rel_error", "ms_before", "ms_after"):
        assert word in result.output
    net, meta = load_checkpoint(out)
    assert meta["svd_ranks"] == {"fc6": 8, "fc7": 4}
    assert isinstance(net.head.fc6, nn.Sequential) and net.head.fc6[0].out_features == 8
    assert 0 < meta["svd"]["fc7"]["relative_error"] < 1


def test_full_rank_compress_then_detect_gives_the_same_detections(tmp_path: Path) -> None:
    model = small_checkpoint(tmp_path / "model.pt")
    full = tmp_path / "full.pt"
    result = CliRunner().invoke(
        cli, ["compress", str(model), "-o", str(full), "--svd-ranks", "fc6=48,fc7=32"]
    )
    assert result.exit_code == 0, result.output
    original, _ = load_checkpoint(model)
    compressed, _ = load_checkpoint(full)
    images, rois = torch.rand(1, 3, 48, 64), torch.tensor([[0.0, 2, 2, 30, 30], [0, 10, 5, 50, 40]])
    with torch.no_grad():
        for a, b in zip(original(images, rois), compressed(images, rois), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)

    write_images(tmp_path / "images", 2)
    props = write_proposals(tmp_path / "props", ["img0", "img1"], BOXES)
    outs = []
    for name, path in (("a", model), ("b", full)):
        args = ["detect", str(tmp_path / "images"), "--model", str(path), "--proposals", str(props)]
        run = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / name)])
        assert run.exit_code == 0, run.output
        outs.append(json.loads((tmp_path / name / "detections.json").read_text()))
    assert len(outs[0]) > 0
    assert [d["category_id"] for d in outs[0]] == [d["category_id"] for d in outs[1]]
    np.testing.assert_allclose([d["bbox"] for d in outs[0]], [d["bbox"] for d in outs[1]], atol=0.02)
    np.testing.assert_allclose([d["score"] for d in outs[0]], [d["score"] for d in outs[1]], atol=1e-4)


def test_low_rank_compressed_model_detects_directly(tmp_path: Path) -> None:
    model = small_checkpoint(tmp_path / "model.pt")
    small = tmp_path / "small.pt"
    assert (
        CliRunner().invoke(cli, ["compress", str(model), "-o", str(small), "--svd-rank", "4"]).exit_code == 0
    )
    write_images(tmp_path / "images", 1)
    props = write_proposals(tmp_path / "props", ["img0"], BOXES)
    args = ["detect", str(tmp_path / "images"), "--model", str(small), "--proposals", str(props)]
    run = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "out")])
    assert run.exit_code == 0, run.output
    # Factorizing an already factorized model again is refused, not silently stacked.
    again = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "o2"), "--svd-rank", "2"])
    assert again.exit_code == 1 and "already factorized" in again.output


def test_no_ranks_means_the_papers_fractions_of_each_width(tmp_path: Path) -> None:
    model = small_checkpoint(tmp_path / "model.pt")
    net, _ = load_checkpoint(model)
    widths = {name: min(getattr(net.head, name).weight.shape) for name in ("fc6", "fc7")}
    result = CliRunner().invoke(cli, ["compress", str(model)])  # -o: beside the model
    assert result.exit_code == 0, result.output
    _, meta = load_checkpoint(tmp_path / "model_svd.pt")
    assert meta["svd_ranks"] == {"fc6": widths["fc6"] // 4, "fc7": max(1, widths["fc7"] // 16)}
    again = CliRunner().invoke(
        cli, ["compress", str(tmp_path / "model_svd.pt"), "-o", str(tmp_path / "b.pt")]
    )
    assert again.exit_code == 1 and "already factorized" in again.output


def test_bad_requests_are_one_line_errors(tmp_path: Path) -> None:
    model = small_checkpoint(tmp_path / "model.pt")
    out = str(tmp_path / "x.pt")
    # Exit code 1: refused by the engine (needs the model); 2: a usage error while parsing.
    for extra, message, code in (
        (["--svd-rank", "49"], "out of range", 1),
        (["--svd-ranks", "fc9=3"], "unknown layer", 2),
        (["-o", str(model), "--svd-rank", "4"], "would overwrite the input model", 1),
    ):
        result = CliRunner().invoke(cli, ["compress", str(model), "-o", out, *extra])
        assert result.exit_code == code, (extra, result.output)
        assert message in result.output and "Traceback" not in result.output, extra
    assert not Path(out).exists()


def test_distill_on_images_records_the_report_and_detects(tmp_path: Path) -> None:
    model = small_checkpoint(tmp_path / "model.pt")
    paths = write_images(tmp_path / "images", 3)
    paths[1].write_bytes(b"not a jpeg")  # a corrupt image among them: reported, skipped
    props = write_proposals(tmp_path / "props", ["img0", "img1", "img2"], BOXES)
    out = tmp_path / "small.pt"
    args = ["compress", str(model), "-o", str(out), "--svd-ranks", "fc6=4,fc7=2"]
    distill = ["--distill-on", str(tmp_path / "images"), "--proposals", str(props), "--distill-steps", "100"]
    result = CliRunner().invoke(cli, [*args, *distill])
    assert result.exit_code == 0, result.output
    assert "distilled on 8 RoIs of 2 images, 100 steps" in result.output  # 4 boxes each, img1 skipped
    assert "img1" in result.output and "Traceback" not in result.output
    assert "svd_rel_error" in result.output
    net, meta = load_checkpoint(out)
    assert meta["svd_ranks"] == {"fc6": 4, "fc7": 2}
    report = meta["distill"]
    assert report["images"] == 2 and report["steps"] == 100 and report["config"]["steps"] == 100
    assert report["on"] == f"{tmp_path / 'images'} --proposals {props}"
    assert report["kl_after"] + report["box_after"] < report["kl_before"] + report["box_before"]

    # The distilled factors differ from the plain SVD's, and detect loads the file as it is.
    plain = tmp_path / "plain.pt"
    assert (
        CliRunner()
        .invoke(cli, ["compress", str(model), "-o", str(plain), "--svd-ranks", "fc6=4,fc7=2"])
        .exit_code
        == 0
    )
    plain_net, plain_meta = load_checkpoint(plain)
    assert "distill" not in plain_meta
    assert not torch.equal(net.head.fc6[0].weight, plain_net.head.fc6[0].weight)
    assert meta["svd"]["fc6"]["relative_error"] > plain_meta["svd"]["fc6"]["relative_error"]  # SVD: optimal
    run = CliRunner().invoke(
        cli,
        [
            "detect",
            str(tmp_path / "images"),
            "--model",
            str(out),
            "--proposals",
            str(props),
            "-o",
            str(tmp_path / "d"),
        ],
    )
    assert run.exit_code == 0, run.output


def test_distill_options_need_each_other(tmp_path: Path) -> None:
    model = small_checkpoint(tmp_path / "model.pt")
    write_images(tmp_path / "images", 1)
    props = write_proposals(tmp_path / "props", ["img0"], BOXES)
    base = ["compress", str(model), "-o", str(tmp_path / "x.pt"), "--svd-rank", "4"]
    for extra, message, code in (
        (["--proposals", str(props)], "go with --distill-on", 1),
        (["--distill-on", str(tmp_path / "images")], "give --proposals FOLDER", 1),
        (
            ["--distill-on", str(tmp_path / "images"), "--proposals", str(props), "--distill-steps", "0"],
            "--distill-steps",
            2,  # a usage error, caught while parsing
        ),
    ):
        result = CliRunner().invoke(cli, [*base, *extra])
        assert result.exit_code == code, (extra, result.output)
        assert message in result.output and "Traceback" not in result.output, extra
    assert not (tmp_path / "x.pt").exists()
