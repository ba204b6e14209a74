"""``rcnn train`` through the CLI: a short run, resume, and one-line errors before training starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_voc_with_proposals(tmp_path_factory.mktemp("cli_train"))


def args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "-q", "--device", "cpu", "train", "--dataset", str(data / "voc"), "--split", "trainval",
        "--proposals", str(data / "props"), "-o", str(out), "--scales", "96", "--max-size", "200",
        "--fc-dims", "32,32", "-R", "16", "--checkpoint-every", "2", "--lr-steps", "3", *extra,
    ]  # fmt: skip


def test_train_then_resume(data, tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, args(data, tmp_path / "run", "--iters", "2"))
    assert result.exit_code == 0, result.output
    assert "trained 2 iterations" in result.output
    assert (tmp_path / "run" / "model.pt").is_file()
    result = runner.invoke(cli, args(data, tmp_path / "run", "--iters", "4", "--resume"))
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in rows] == [1, 2, 3, 4]
    assert {"loss", "loss_cls", "loss_loc", "accuracy", "fg", "bg", "images_per_s"} <= set(rows[0])
    model = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert model["meta"]["iterations"] == 4 and model["config"]["fc6_dim"] == 32
    # No --backbone: the CPU net with the wider receptive field (docs/BENCHMARKS.md, "A recipe for
    # natural photos"), with its dilated blocks in the saved weights.
    assert model["config"]["backbone"] == "small_context"
    blocks = [
        k for k in model["state_dict"] if k.startswith("backbone.features.") and k.endswith(".conv.weight")
    ]
    assert len(blocks) == 3, blocks


def test_errors_are_one_line(data, tmp_path) -> None:
    runner = CliRunner()
    bad = args(data, tmp_path / "r")
    bad[bad.index("--proposals") + 1] = str(tmp_path / "missing")
    result = runner.invoke(cli, bad)
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "missing" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(cli, [*args(data, tmp_path / "r"), "--freeze-below", "conv99"])
    assert result.exit_code == 1 and "no layer 'conv99'" in result.output
    result = runner.invoke(cli, [*args(data, tmp_path / "r"), "--weights", str(tmp_path / "nope.pth")])
    assert result.exit_code == 1 and "nope.pth: weights file not found" in result.output
    result = runner.invoke(cli, [*args(data, tmp_path / "r"), "--amp"])
    assert result.exit_code == 1 and "--amp needs --device cuda" in result.output


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--fg-fraction", "1.5"], "Error: --fg-fraction must be in [0, 1], got 1.5"),
        (["--lr-steps", "5,3"], "Error: --lr-steps must be increasing iterations >= 1, got 5,3"),
        (["--iters", "0"], "Error: --iters must be >= 1, got 0"),
        (["--time-limit", "-2"], "Error: --time-limit must be > 0 minutes, got -2"),
    ],
)
def test_bad_options_are_refused_before_anything_is_read(data, tmp_path, extra, message) -> None:
    result = CliRunner().invoke(cli, [*args(data, tmp_path / "r"), *extra])
    assert result.exit_code == 1 and result.output.strip() == message
    assert not (tmp_path / "r").exists()


def test_the_backbones_recipe_fills_in_what_is_not_given(data, tmp_path) -> None:
    cmd = args(data, tmp_path / "run", "--iters", "2")
    del cmd[cmd.index("--lr-steps") : cmd.index("--lr-steps") + 2]
    result = CliRunner().invoke(cli, cmd)
    assert result.exit_code == 0, result.output
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["meta"]["train_config"]
    # small's recipe (lr 0.01, 100 warm-up iterations); the lr step at 75% of the given --iters.
    assert (saved["iters"], saved["lr"], saved["warmup_iters"], saved["lr_steps"]) == (2, 0.01, 100, [1])


def _rows_without_timing(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "images_per_s"} for row in rows]


def test_max_proposals_0_trains_on_all_proposals(data, tmp_path) -> None:
    """0 means all, as in propose and detect: the same minibatches as with more proposals than any image
    has, background RoIs included (with no proposals at all only ground-truth boxes, all foreground,
    would be left)."""
    runner = CliRunner()
    for name, value in (("zero", "0"), ("every", "100000")):
        result = runner.invoke(cli, args(data, tmp_path / name, "--iters", "2", "--max-proposals", value))
        assert result.exit_code == 0, result.output
    rows = _rows_without_timing(tmp_path / "zero")
    assert rows == _rows_without_timing(tmp_path / "every")
    assert all(row["bg"] > 0 for row in rows)

    result = runner.invoke(cli, args(data, tmp_path / "minus", "--max-proposals", "-1"))
    assert result.exit_code == 2 and "--max-proposals" in result.output and "-1" in result.output
    assert not (tmp_path / "minus").exists()
