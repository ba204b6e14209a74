"""``--optimizer adamw`` (it was called ``adam``, and built AdamW): the old name still works with a note,
and a run started under the old name resumes under the new one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.solver import make_optimizer
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_voc_with_proposals(tmp_path_factory.mktemp("optimizer"))


def args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--device", "cpu", "train", "--dataset", str(data / "voc"), "--proposals", str(data / "props"),
        "-o", str(out), "--scales", "96", "--max-size", "200", "--fc-dims", "32,32", "-R", "16",
        "--lr-steps", "3", "--iters", "1", *extra,
    ]  # fmt: skip


def test_adamw_builds_adamw() -> None:
    model = torch.nn.Linear(3, 2)
    assert isinstance(make_optimizer(model, TrainConfig(optimizer="adamw")), torch.optim.AdamW)
    assert isinstance(make_optimizer(model, TrainConfig(optimizer="sgd")), torch.optim.SGD)


def test_help_lists_adamw_only() -> None:
    result = CliRunner().invoke(cli, ["train", "--help"])
    assert "[sgd|adamw]" in result.output


def test_the_old_name_trains_adamw_with_a_note(data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [*args(data, tmp_path / "run", "--optimizer", "adam"), "-q"])
    assert result.exit_code == 0, result.output
    assert "note: --optimizer adam is called adamw now" in result.output
    model = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert model["meta"]["train_config"]["optimizer"] == "adamw"


def test_a_run_saved_as_adam_resumes_as_adamw(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, [*args(data, run, "--optimizer", "adamw"), "-q"]).exit_code == 0
    checkpoint = run / "checkpoints" / "last.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["train_config"]["optimizer"] = "adam"  # as a checkpoint of before the rename holds it
    torch.save(state, checkpoint)
    resumed = CliRunner().invoke(cli, [*args(data, run, "--optimizer", "adamw", "--resume"), "--iters", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert "trained 2 iterations" in resumed.output
    other = CliRunner().invoke(cli, [*args(data, run, "--resume"), "--iters", "3"])  # sgd now: refused
    assert other.exit_code == 1 and "optimizer: 'adamw' then, 'sgd' now" in other.output
