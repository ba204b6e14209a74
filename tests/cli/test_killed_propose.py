"""``rcnn propose --workers 2`` killed with SIGKILL midway, as a real process: its workers end with it,
and a rerun completes the folder as an uninterrupted run writes it, with no temporary file left
(issue: reliability, leftovers after a kill)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from support.processes import (
    children_of,
    command_line,
    kill_all,
    kill_when,
    left_over,
    start_rcnn,
    still_running,
    temporaries_in,
    wait_until,
)

NUM_IMAGES = 24
PROPOSE = ("--mode", "single", "--seed", "3")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    from rcnn_cli.data import make_synthetic_voc

    return make_synthetic_voc(
        tmp_path_factory.mktemp("kill_propose") / "voc", NUM_IMAGES, image_size=(200, 150)
    )


def _finished(folder: Path) -> list[Path]:
    """The images' files (pathlib's ``*`` also matches the hidden temporaries of writes under way)."""
    return [path for path in folder.glob("*.npz") if not path.name.startswith(".")]


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _manifest(folder: Path) -> dict:
    """The manifest without what says when and with which -o it was made."""
    doc = json.loads((folder / "manifest.json").read_text())
    return {k: v for k, v in doc.items() if k not in ("created", "command")}


def test_propose_killed_midway_ends_its_workers_and_a_rerun_completes_it(images, tmp_path) -> None:
    out, log = tmp_path / "killed", tmp_path / "propose.log"
    process = start_rcnn("propose", images, "-o", out, *PROPOSE, "--workers", "2", log=log)
    children: list[int] = []  # the workers, and multiprocessing's resource tracker

    def midway() -> bool:  # both workers started, some images written
        if sum("spawn_main" in command_line(pid) for pid in children) < 2:
            children[:] = children_of(process.pid)
            return False
        return bool(_finished(out))

    try:
        kill_when(process, midway, log)
        written = len(_finished(out))
        assert 0 < written < NUM_IMAGES, "the run was not killed midway"
        assert wait_until(lambda: not still_running(children), timeout=5), (
            f"processes {still_running(children)} outlived the killed propose {process.pid}"
        )
    finally:
        kill_all(children)
    # What a worker killed in the middle of writing an image's file leaves (too short a moment to hit).
    left_over(out / "000001.npz", children[0])

    rerun = CliRunner().invoke(cli, ["-q", "propose", str(images), "-o", str(out), *PROPOSE])
    assert rerun.exit_code == 0, rerun.output
    assert f"{written} already done" in rerun.output
    reference = tmp_path / "reference"
    whole = CliRunner().invoke(cli, ["-q", "propose", str(images), "-o", str(reference), *PROPOSE])
    assert whole.exit_code == 0, whole.output

    assert not temporaries_in(out)
    names = sorted(path.name for path in out.iterdir())
    assert names == sorted(path.name for path in reference.iterdir())
    assert _manifest(out) == _manifest(reference)
    for name in names:
        if name.endswith(".npz"):  # zip files carry timestamps: compare what they hold
            mine, theirs = _arrays(out / name), _arrays(reference / name)
            assert mine.keys() == theirs.keys()
            for key in mine:
                assert mine[key].dtype == theirs[key].dtype and np.array_equal(mine[key], theirs[key]), name
