"""``rcnn train --ema``: model.pt holds the weights' moving average, the resume checkpoint both, and a
run stopped and resumed ends with the same average as one run straight through."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")


def args(data: Path, out: Path, iters: int) -> list[str]:
    return [
        "-q", "--device", "cpu", "train", "--dataset", str(data / "voc"), "--proposals", str(data / "props"),
        "-o", str(out), "--scales", "96", "--max-size", "200", "--fc-dims", "16,16", "-R", "16",
        "--lr-steps", "3", "--iters", str(iters), "--ema", "0.5",
    ]  # fmt: skip


def test_model_pt_holds_the_average_and_a_resume_continues_it(tmp_path: Path) -> None:
    data = tiny_voc_with_proposals(tmp_path / "data")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    for command in (args(data, straight, 4), args(data, stopped, 2), [*args(data, stopped, 4), "--resume"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, result.output
    last = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)
    saved = torch.load(straight / "model.pt", weights_only=True)["state_dict"]
    name = "fc6.weight"  # not bbox_pred: model.pt folds the target normalization into it
    assert last["weight_average"]["updates"] == 4
    torch.testing.assert_close(saved[name], last["weight_average"]["average"][name])
    assert not torch.equal(saved[name], last["model"][name])  # the last iteration's weights differ
    resumed = torch.load(stopped / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(resumed[k], v) for k, v in saved.items())
