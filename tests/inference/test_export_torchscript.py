"""An exported TorchScript module, loaded afresh, gives the checkpoint's scores and boxes at two image
sizes and two proposal counts; a truncated-SVD model too; it loads in a bare interpreter once the
compiled kernels are imported (``import rcnn_cli._C``), as docs/FORMATS.md says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rcnn_cli
from rcnn_cli.inference.export import METADATA_KEY, export_model
from rcnn_cli.models import load_checkpoint
from support.export import ROI_COUNTS, assert_matches, cases, run_exported, svd_checkpoint
from support.inference import CLASS_NAMES, small_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_scores_and_boxes_match_at_two_sizes_and_two_roi_counts(tmp_path: Path) -> None:
    checkpoint = small_checkpoint(tmp_path / "model.pt")
    result = export_model(checkpoint, tmp_path / "model.ts", "torchscript")
    model, _meta = load_checkpoint(checkpoint)
    counts = set()
    for case in cases(model):
        assert_matches(run_exported(result.path, "torchscript", case.inputs), case)
        counts.add(len(case.inputs["proposals"]))
    assert counts == set(ROI_COUNTS)
    extra = {METADATA_KEY: ""}
    torch.jit.load(str(result.path), _extra_files=extra)
    assert json.loads(extra[METADATA_KEY])["class_names"] == list(CLASS_NAMES)


def test_a_truncated_svd_model_exports_and_matches(tmp_path: Path) -> None:
    svd = svd_checkpoint(small_checkpoint(tmp_path / "model.pt"), tmp_path / "model_svd.pt")
    result = export_model(svd, tmp_path / "model_svd.ts", "torchscript")
    model, _meta = load_checkpoint(svd)
    for case in list(cases(model))[:4]:
        assert_matches(run_exported(result.path, "torchscript", case.inputs), case)


def test_it_loads_and_runs_with_only_the_compiled_kernels_imported(tmp_path: Path) -> None:
    result = export_model(small_checkpoint(tmp_path / "model.pt"), tmp_path / "model.ts", "torchscript")
    script = (
        "import sys, torch\n"
        "if sys.argv[2] == 'kernels':\n"
        "    import rcnn_cli._C  # registers torch.ops.rcnn_cli\n"
        "m = torch.jit.load(sys.argv[1])\n"
        "scores, boxes = m(torch.zeros(1, 3, 64, 80), torch.tensor([[0., 0., 50., 40.]]),\n"
        "                  torch.tensor([48, 60]), torch.tensor([1.25]))\n"
        "print(tuple(scores.shape), tuple(boxes.shape))\n"
    )
    src = str(Path(rcnn_cli.__file__).resolve().parents[1])
    env = {"PYTHONPATH": src, "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}

    def load(mode: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", script, str(result.path), mode], capture_output=True, text=True, env=env
        )

    done = load("kernels")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(1,", "2)", "(1,", "2,", "4)"]
    bare = load("bare")
    assert bare.returncode != 0 and "rcnn_cli" in bare.stderr
