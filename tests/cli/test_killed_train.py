"""``rcnn train`` killed with SIGKILL, as a real process, before and after its first checkpoint: the rerun
(a fresh start, or ``--resume``) ends as an uninterrupted run does, bit for bit: the same metrics rows
and the same weights, and no temporary file is left (issue: reliability, leftovers after a kill)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from support.processes import kill_when, left_over, start_rcnn, temporaries_in
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")
CHECKPOINT_EVERY = 3


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_voc_with_proposals(tmp_path_factory.mktemp("kill_train"))


def train_args(data: Path, run: Path) -> list[str]:
    return [
        "-q", "--device", "cpu", "train", "--dataset", str(data / "voc"), "--split", "trainval",
        "--proposals", str(data / "props"), "-o", str(run), "--backbone", "small", "--fc-dims", "16,16",
        "--scales", "96", "--max-size", "200", "-R", "16", "--iters", "6", "--lr-steps", "4",
        "--checkpoint-every", str(CHECKPOINT_EVERY),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory) -> Path:
    """The same run, uninterrupted (in this process, on one thread as the killed ones)."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(cli, train_args(data, run))
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    return run


def _rows(run: Path) -> list[dict]:
    """The complete rows of metrics.jsonl, without the one timing column."""
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
    rows = [json.loads(line) for line in lines if line.endswith("\n")]
    return [{k: v for k, v in row.items() if k != "images_per_s"} for row in rows]


def assert_same_run(run: Path, reference: Path) -> None:
    assert _rows(run) == _rows(reference)
    mine = torch.load(run / "model.pt", weights_only=True)
    theirs = torch.load(reference / "model.pt", weights_only=True)
    assert mine["meta"] == theirs["meta"] and mine["config"] == theirs["config"]
    assert mine["state_dict"].keys() == theirs["state_dict"].keys()
    for name, tensor in mine["state_dict"].items():
        assert torch.equal(tensor, theirs["state_dict"][name]), name
    assert not temporaries_in(run)


def test_train_killed_before_its_first_checkpoint_starts_afresh(data, reference, tmp_path) -> None:
    run, log = tmp_path / "run", tmp_path / "train.log"
    checkpoint = run / "checkpoints" / "last.pt"
    kill_when(start_rcnn(*train_args(data, run), log=log), lambda: len(_rows(run)) >= 1, log)
    assert not checkpoint.exists(), "killed too late: the first checkpoint was written"
    assert _rows(run)  # rows of a run that cannot be resumed

    result = CliRunner().invoke(cli, train_args(data, run))  # nothing to resume: a fresh start
    assert result.exit_code == 0, result.output
    assert [row["iter"] for row in _rows(run)] == [1, 2, 3, 4, 5, 6]
    assert_same_run(run, reference)


def test_train_killed_after_its_first_checkpoint_resumes_bit_for_bit(data, reference, tmp_path) -> None:
    run, log = tmp_path / "run", tmp_path / "train.log"
    checkpoint = run / "checkpoints" / "last.pt"
    ready = lambda: checkpoint.exists() and len(_rows(run)) > CHECKPOINT_EVERY  # noqa: E731
    process = start_rcnn(*train_args(data, run), log=log)
    kill_when(process, ready, log)
    saved_at = torch.load(checkpoint, weights_only=True)["iteration"]
    assert len(_rows(run)) > saved_at  # rows written after the checkpoint, to be written again
    # What a kill in the middle of writing the next checkpoint leaves (too short a moment to hit here).
    left_over(checkpoint, process.pid)

    result = CliRunner().invoke(cli, [*train_args(data, run), "--resume"])
    assert result.exit_code == 0, result.output
    assert [row["iter"] for row in _rows(run)] == [1, 2, 3, 4, 5, 6]
    assert_same_run(run, reference)
