"""``rcnn train --resume`` with settings other than the run's: one line naming what changed, then and
now, before any training; and ``metrics.jsonl`` reads as one run after a fresh start or a resume
(issue: reliability)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.errors import ArtifactError
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.resume import load_resume_state, plain_config, save_resume_state
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_voc_with_proposals(tmp_path_factory.mktemp("train_resume"))


def args(data: Path, out: Path, **change: str) -> list[str]:
    """A tiny run's command line; ``change``: options to set otherwise (``fc_dims="16,16"``)."""
    options = {
        "dataset": str(data / "voc"), "split": "trainval", "proposals": str(data / "props"), "out": str(out),
        "scales": "96", "max_size": "200", "fc_dims": "32,32", "pool": "roi", "rois_per_batch": "16",
        "checkpoint_every": "2", "lr_steps": "3", "iters": "2",
    }  # fmt: skip
    options.update(change)
    flat = [item for key, value in options.items() for item in ("--" + key.replace("_", "-"), value)]
    return ["-q", "--device", "cpu", "train", *flat]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def stopped_run(data: Path, tmp_path_factory) -> Path:
    """A run of 2 iterations with its checkpoint, to be continued."""
    run = tmp_path_factory.mktemp("stopped") / "run"
    result = CliRunner().invoke(cli, args(data, run))
    assert result.exit_code == 0, result.output
    return run


@pytest.mark.parametrize(
    "change,message",
    [
        ({"fc_dims": "16,16"}, "fc6_dim: 32 then, 16 now; fc7_dim: 32 then, 16 now"),
        ({"pool": "spp"}, "pool: 'roi' then, 'spp' now"),
        ({"scales": "80"}, "scales: [96] then, [80] now"),
        ({"split": "train"}, "split: 'trainval' then, 'train' now; images: '"),
        ({"cls_target": "iou"}, "cls_target: 'hard' then, 'iou' now"),
    ],
)
def test_resume_with_other_settings_names_them_before_training(data, stopped_run, change, message) -> None:
    checkpoint = stopped_run / "checkpoints" / "last.pt"
    before = (checkpoint.read_bytes(), (stopped_run / "metrics.jsonl").read_bytes())
    result = CliRunner().invoke(cli, [*args(data, stopped_run, iters="4", **change), "--resume"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {checkpoint}: the run was started with other settings (")
    assert message in result.output and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    # Nothing was trained, nothing written.
    assert (checkpoint.read_bytes(), (stopped_run / "metrics.jsonl").read_bytes()) == before


def test_resume_with_the_same_settings_goes_on(data, stopped_run, tmp_path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes((stopped_run / "checkpoints" / "last.pt").read_bytes())
    rows = (stopped_run / "metrics.jsonl").read_text().splitlines()
    # Rows a killed run wrote after its checkpoint, the last one cut short while it was written.
    (run / "metrics.jsonl").write_text("\n".join([*rows, rows[-1].replace('"iter": 2', '"iter": 3'), '{"it']))
    result = CliRunner().invoke(cli, [*args(data, run, iters="3"), "--resume"])
    assert result.exit_code == 0, result.output
    assert [row["iter"] for row in _rows(run)] == [1, 2, 3]


def test_a_fresh_start_starts_a_fresh_metrics_file(data, tmp_path) -> None:
    """A run killed before its first checkpoint left rows; a new start (nothing to resume) replaces them."""
    run = tmp_path / "run"
    run.mkdir()
    old_rows = [json.dumps({"iter": i, "loss": 9.0}) for i in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("\n".join(old_rows) + "\n")
    result = CliRunner().invoke(cli, args(data, run))
    assert result.exit_code == 0, result.output
    rows = _rows(run)
    assert [row["iter"] for row in rows] == [1, 2] and all(row["loss"] != 9.0 for row in rows)


def test_a_checkpoint_from_before_an_option_existed_resumes_as_its_default(tmp_path: Path) -> None:
    """A TrainConfig field added since the checkpoint was written had its default then."""
    saved = plain_config(TrainConfig())
    del saved["cls_target"]
    state = {"model": {}, "optimizer": {}, "scheduler": {}, "ranks": [{}], "train_config": saved}
    save_resume_state(tmp_path / "last.pt", state)
    now = {"train_config": plain_config(TrainConfig())}
    path = tmp_path / "last.pt"
    assert load_resume_state(path, tmp_path, now, world_size=1)["train_config"] == saved
    later = {"train_config": plain_config(TrainConfig(cls_target="iou"))}
    with pytest.raises(ArtifactError, match="cls_target: 'hard' then, 'iou' now"):
        load_resume_state(path, tmp_path, later, world_size=1)
