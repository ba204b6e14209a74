"""``rcnn compare`` on a trimmed copy of the bundled sample (6 training, 4 test images, a few iterations
per method): a row per method with every field measured, every picture, an HTML page whose links all
resolve, a rerun that keeps every finished step, a run killed with SIGKILL that resumes, and one-line
refusals."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import rcnn_cli
from rcnn_cli.cli.main import cli
from rcnn_cli.data import sample_dataset_path

pytestmark = pytest.mark.usefixtures("one_thread")

SRC = Path(rcnn_cli.__file__).resolve().parents[1]
TINY = ["--budget", "2m", "--max-proposals", "60", "--train-option", "--iters 2 --checkpoint-every 1"]
PICTURES = ("accuracy_vs_time", "stage_times", "precision_recall", "proposal_recall", "detections")


def trimmed_sample(folder: Path, train: int = 6, test: int = 4) -> Path:
    """A VOC copy of the bundled sample with the first ``train`` trainval and ``test`` test images."""
    source = sample_dataset_path()
    folder.mkdir(parents=True)
    splits = {
        "trainval": (source / "ImageSets/Main/trainval.txt").read_text().split()[:train],
        "test": (source / "ImageSets/Main/test.txt").read_text().split()[:test],
    }
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True)
    for split, ids in splits.items():
        (folder / "ImageSets/Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for image_id in ids:
            shutil.copy(source / "Annotations" / f"{image_id}.xml", folder / "Annotations")
            shutil.copy(source / "JPEGImages" / f"{image_id}.jpg", folder / "JPEGImages")
    return folder


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("compare")
    data = trimmed_sample(root / "data")
    report = root / "report"
    result = CliRunner().invoke(cli, ["compare", "--dataset", str(data), "-o", str(report), *TINY])
    assert result.exit_code == 0, result.output
    return data, report, result.output


def test_a_row_per_method_with_everything_measured(compared: tuple[Path, Path, str]) -> None:
    _data, report, output = compared
    results = json.loads((report / "results.json").read_text())
    rows = {row["method"]: row for row in results["methods"]}
    assert list(rows) == ["rcnn", "sppnet", "fast", "faster"] and results["missing"] == []
    stages = {m: [s["name"] for s in row["training_stages"]] for m, row in rows.items()}
    assert stages["rcnn"] == ["1-finetune", "2-region-features", "3-svm", "4-box-regression"]
    assert stages["sppnet"][0] == "0-conv-features" and stages["sppnet"][1:] == stages["rcnn"]
    assert len(stages["fast"]) == 1 and len(stages["faster"]) == 1
    for method, row in rows.items():
        assert row["train_seconds"] > 0, method
        assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in row["training_stages"]), method
        test = row["test_ms_per_image"]
        assert test["total"] == pytest.approx(sum(v for k, v in test.items() if k != "total"))
        assert test["conv"] > 0 and test["proposals"] > 0, method
        for key in ("voc07_map", "voc_map", "coco_ap"):
            assert 0.0 <= row[key] <= 100.0, (method, key)
        assert set(row["per_class_ap"]) == set(results["class_names"]) == set(row["pr_curves"])
    # Only R-CNN and SPPnet cache region features; SPPnet its conv maps too.
    assert (
        "2-region-features" in rows["rcnn"]["disk_bytes"]
        and "0-conv-features" in rows["sppnet"]["disk_bytes"]
    )
    assert "2-region-features" not in rows["fast"]["disk_bytes"]
    # The RPN proposes in the detector; the others read Selective Search's, timed once for all.
    assert rows["faster"]["test_ms_per_image"]["proposals"] < rows["fast"]["test_ms_per_image"]["proposals"]
    assert {r["what"] for r in results["ratios"]} >= {"Fast R-CNN vs R-CNN, test time"}
    assert set(results["proposal_recall"]) == {"Selective Search", "RPN"}
    for line in ("R-CNN", "SPPnet", "Fast R-CNN", "Faster R-CNN", "report -> "):
        assert line in output  # the closing table, and where the report is


def test_every_picture_and_the_pages_links(compared: tuple[Path, Path, str]) -> None:
    _data, report, _output = compared
    for name in PICTURES:
        assert (report / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    page = (report / "index.html").read_text()
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert {f"{name}.png" for name in PICTURES} <= set(links)
    for link in links:
        assert not link.startswith(("http:", "https:", "//")), link  # opens from disk, no network
        assert (report / link).exists(), link
    markdown = (report / "report.md").read_text()
    assert "| R-CNN |" in markdown and "(accuracy_vs_time.png)" in markdown


def test_a_rerun_keeps_every_finished_step(compared: tuple[Path, Path, str]) -> None:
    data, report, _output = compared
    markers = {p: p.stat().st_mtime_ns for p in (report / "runs" / "steps").glob("*.json")}
    result = CliRunner().invoke(cli, ["compare", "--dataset", str(data), "-o", str(report), *TINY])
    assert result.exit_code == 0, result.output
    assert result.output.count("done earlier") == len(markers) == 15
    assert {p: p.stat().st_mtime_ns for p in markers} == markers


def test_other_settings_and_sppnet_alone_are_refused_in_one_line(compared: tuple[Path, Path, str]) -> None:
    data, report, _output = compared
    args = ["compare", "--dataset", str(data), "-o", str(report), *TINY[2:], "--budget", "3m"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "holds a comparison with other settings (budget_s 120.0 -> 180.0)" in result.output
    result = CliRunner().invoke(
        cli, ["compare", "--dataset", str(data), "-o", "x", "--methods", "sppnet,rcnn"]
    )
    assert result.exit_code == 1 and "--methods sppnet needs fast too" in result.output, result.output
    result = CliRunner().invoke(cli, ["compare", "--dataset", str(data), "-o", "x", "--backbone", "resnet18"])
    assert result.exit_code == 1 and "has no fc7 for rcnn and sppnet's SVMs" in result.output, result.output


def test_killed_with_sigkill_it_resumes(tmp_path: Path) -> None:
    """Killed while SPPnet trains, the rerun keeps the steps before it and goes on from there."""
    data = trimmed_sample(tmp_path / "data", train=4, test=2)
    report = tmp_path / "report"
    args = ["compare", "--dataset", str(data), "-o", str(report), "--methods", "fast,sppnet", *TINY]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rcnn_cli.cli.main", "-q", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = report / "runs" / "sppnet" / "train"
    deadline = time.monotonic() + 300
    while not target.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    steps = report / "runs" / "steps"
    before = {p.name: p.stat().st_mtime_ns for p in steps.glob("*.json")}
    assert "fast-train.json" in before and "sppnet-train.json" not in before
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("done earlier") == len(before)
    assert all(steps.joinpath(name).stat().st_mtime_ns == t for name, t in before.items())
    rows = json.loads((report / "results.json").read_text())["methods"]
    assert [row["method"] for row in rows] == ["sppnet", "fast"]
