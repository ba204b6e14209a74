"""``rcnn evaluate --proposals [LABEL=]FOLDER ... --top-n N,... --recall-plot out.png`` on a tiny synthetic
VOC set, with proposals folders written by the repository's own ProposalStore."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from rcnn_cli.cli.main import cli
from rcnn_cli.data import make_synthetic_voc, open_dataset
from rcnn_cli.proposals import Proposals, ProposalStore

SPLIT = "trainval"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    return make_synthetic_voc(tmp_path / "voc", num_images=4, image_size=(64, 48), min_size=8)


def _write_folder(folder: Path, voc: Path, boxes_of) -> Path:  # type: ignore[no-untyped-def]
    """A proposals folder with ``boxes_of(record)`` (float [P, 4], best first) for every image."""
    dataset = open_dataset(voc, SPLIT)
    store = ProposalStore(folder)
    store.prepare({"method": "test"}, [r.image_id for r in dataset.records])
    for record in dataset.records:
        boxes = np.asarray(boxes_of(record), np.float32).reshape(-1, 4)
        store.write(record.image_id, Proposals.ranked(boxes), record.width, record.height)
    return folder


def _exact_after_a_miss(record) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A 1-pixel box first (IoU < 0.5 with any 8-pixel object), then the ground truth itself (IoU 1)."""
    return np.concatenate([[[0, 0, 1, 1]], record.boxes])


def _shrunk(record) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Each ground-truth box cut to 62% of its height: IoU 0.62 with it."""
    boxes = record.boxes.astype(np.float64).copy()
    boxes[:, 3] = boxes[:, 1] + 0.62 * (boxes[:, 3] - boxes[:, 1])
    return boxes


def _invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    # Only click's own exits: an exception escaping the command would be a traceback for the user.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def test_two_folders_at_two_budgets_table_report_and_plot(voc: Path, tmp_path: Path) -> None:
    exact = _write_folder(tmp_path / "exact", voc, _exact_after_a_miss)
    shrunk = _write_folder(tmp_path / "props_shrunk", voc, _shrunk)
    report_path, plot = tmp_path / "report.json", tmp_path / "recall.png"
    result = _invoke(
        "-q", "evaluate", "--dataset", str(voc), "--split", SPLIT,
        "--proposals", f"gt={exact}", "--proposals", str(shrunk), "--top-n", "1,100",
        "--recall-plot", str(plot), "-o", str(report_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("recall@0.5", "recall@0.7", "recall@0.9", "AR", "boxes/img"):
        assert text in result.output
    for label in ("gt@1", "gt@100", "props_shrunk@1", "props_shrunk@100"):
        assert label in result.output

    report = json.loads(report_path.read_text())
    assert report["kind"] == "proposal_evaluation" and report["split"] == SPLIT
    assert report["iou_thresholds"] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert report["recall_plot"] == str(plot)
    rows = {(row["label"], row["top_n"]): row for row in report["rows"]}
    assert list(rows) == [("gt", 1), ("gt", 100), ("props_shrunk", 1), ("props_shrunk", 100)]
    records = open_dataset(voc, SPLIT).records
    num_gt = sum(len(r.boxes) for r in records)
    assert {row["gt_boxes"] for row in rows.values()} == {num_gt}
    # gt@1: only the 1-pixel box, nothing recalled; gt@100: the ground truth itself, all recalled.
    assert rows["gt", 1]["recall"] == [0.0] * 10 and rows["gt", 1]["AR"] == 0.0
    assert rows["gt", 100]["recall"] == [1.0] * 10 and rows["gt", 100]["AR"] == 1.0
    assert rows["gt", 1]["boxes/img"] == 1.0
    assert rows["gt", 100]["boxes/img"] == pytest.approx(1 + num_gt / len(records))
    # Shrunk to IoU 0.62: recalled up to 0.6, not from 0.65 on; at N=1 only each image's first object.
    assert rows["props_shrunk", 100]["recall"] == [1.0] * 3 + [0.0] * 7
    assert rows["props_shrunk", 100]["AR"] == pytest.approx(0.3)
    first_only = len(records) / num_gt
    assert rows["props_shrunk", 1]["recall"] == pytest.approx([first_only] * 3 + [0.0] * 7)
    assert rows["props_shrunk", 1]["recall@0.5"] == pytest.approx(first_only)
    assert rows["props_shrunk", 1]["recall@0.7"] == rows["props_shrunk", 1]["recall@0.9"] == 0.0

    data = plot.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 600 <= width <= 2000 and 400 <= height <= 1600


def test_one_folder_without_top_n_is_measured_on_all_its_boxes(voc: Path, tmp_path: Path) -> None:
    props = _write_folder(tmp_path / "ss", voc, _exact_after_a_miss)
    out = tmp_path / "r.json"
    result = _invoke(
        "evaluate", "--dataset", str(voc), "--split", SPLIT, "--proposals", str(props), "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "ss@all" in result.output
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["label"], row["top_n"], row["proposals"]) == ("ss", None, str(props))
    assert row["recall"] == [1.0] * 10 and row["MABO"] == 1.0 and row["ABO"] == 1.0
    assert not (tmp_path / "recall.png").exists()


@pytest.mark.parametrize(
    ("proposals", "extra", "message"),
    [
        (["=ss"], [], "the label before '=' is empty"),
        (["ss="], [], "the folder after '=' is empty"),
        (["ss=missing"], [], "folder 'missing' does not exist"),
        (["missing"], [], "folder 'missing' does not exist"),
        (["a=ss", "a=other"], [], "the label 'a' names both ss and other"),
        (["ss"], ["--recall-plot", "nowhere/recall.png"], "the folder nowhere does not exist"),
        (["ss"], ["--recall-plot", "recall.jpg"], "give a file name ending in .png"),
        (["ss"], ["--top-n", "300,x"], "--top-n"),
    ],
    ids=[
        "no-label",
        "no-folder",
        "labelled-missing",
        "missing",
        "same-label",
        "plot-dir",
        "plot-jpg",
        "top-n",
    ],
)
def test_bad_proposals_and_plot_paths_are_one_line_usage_errors(
    voc: Path, tmp_path: Path, monkeypatch, proposals: list[str], extra: list[str], message: str
) -> None:
    """Refused while parsing (exit code 2), before anything is measured, and nothing is written."""
    _write_folder(tmp_path / "ss", voc, _exact_after_a_miss)
    _write_folder(tmp_path / "other", voc, _shrunk)
    monkeypatch.chdir(tmp_path)  # the relative names above are in tmp_path
    args = ["evaluate", "--dataset", str(voc), "--split", SPLIT, *extra]
    for item in proposals:
        args += ["--proposals", item]
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "ss", "voc"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--top-n", "5"], "--top-n goes with --proposals alone"),
        (["--recall-plot", "{tmp}/r.png"], "--recall-plot goes with --proposals alone"),
    ],
)
def test_top_n_and_plot_need_the_proposals_mode(
    voc: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    dets = tmp_path / "dets.json"
    dets.write_text("[]")
    extra = [value.format(tmp=tmp_path) for value in extra]
    result = _invoke("evaluate", "--dataset", str(voc), "--split", SPLIT, "--detections", str(dets), *extra)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {message} (not --detections or --svd-sweep)"


def test_svd_sweep_takes_one_folder(voc: Path, tmp_path: Path) -> None:
    ss = _write_folder(tmp_path / "ss", voc, _exact_after_a_miss)
    model = tmp_path / "m.pt"
    model.write_bytes(b"not read")
    result = _invoke(
        "evaluate", "--svd-sweep", "--model", str(model), "--dataset", str(voc), "--split", SPLIT,
        "--proposals", str(ss), "--proposals", f"again={ss}",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --svd-sweep detects on one --proposals folder; give only one"


def test_a_folder_that_is_not_a_proposals_folder_is_one_error_line(voc: Path, tmp_path: Path) -> None:
    ss = _write_folder(tmp_path / "ss", voc, _exact_after_a_miss)
    plain = tmp_path / "plain"
    plain.mkdir()
    plot = tmp_path / "r.png"
    args = ["evaluate", "--dataset", str(voc), "--split", SPLIT, "--recall-plot", str(plot)]
    result = _invoke(*args, "--proposals", str(ss), "--proposals", str(plain))
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {plain}: no manifest.json; not a proposals folder made by rcnn (or incomplete)"
    )
    assert not plot.exists()  # every folder is checked before any is measured
