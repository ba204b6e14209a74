"""``rcnn evaluate`` end to end on the bundled BCCD sample and a synthetic VOC set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.data import open_dataset, sample_dataset_path
from rcnn_cli.evaluation.coco_format import coco_image_ids, detections_to_coco
from rcnn_cli.proposals import Proposals, ProposalStore
from support.inference import small_checkpoint


def _gt_results(dataset, drop_class: int | None = None) -> list[dict]:
    ids = coco_image_ids(r.image_id for r in dataset.records)
    out = []
    for r in dataset.records:
        keep = r.labels != drop_class
        out += detections_to_coco(ids[r.image_id], r.boxes[keep], np.full(keep.sum(), 0.9), r.labels[keep])
    return out


def test_ground_truth_as_detections_scores_100_on_every_metric(tmp_path: Path) -> None:
    root = sample_dataset_path()
    dataset = open_dataset(root, "test")
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(_gt_results(dataset)))
    report_path = tmp_path / "report.json"
    args = ["-q", "evaluate", "--dataset", str(root), "--split", "test", "--detections", str(dets)]
    result = CliRunner().invoke(cli, [*args, "-o", str(report_path)])
    assert result.exit_code == 0, result.output
    assert "VOC07 AP" in result.output and "AP75" in result.output
    report = json.loads(report_path.read_text())
    assert [row["class"] for row in report["classes"]] == list(dataset.class_names)
    for key in ("voc07_ap", "voc_ap", "coco_ap", "coco_ap50", "coco_ap75"):
        assert report["mean"][key] == 100.0, key


def test_a_missing_class_lowers_its_ap_only(tmp_path: Path) -> None:
    root = sample_dataset_path()
    dataset = open_dataset(root, "test")
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(_gt_results(dataset, drop_class=2)))
    out = tmp_path / "r.json"
    args = ["evaluate", "--dataset", str(root), "--split", "test", "--detections", str(dets), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["classes"]
    assert [r["voc_ap"] for r in rows] == [100.0 if r["label"] != 2 else 0.0 for r in rows]


def test_detections_for_more_images_than_the_split_are_ignored(tmp_path: Path) -> None:
    root = sample_dataset_path()
    both = _gt_results(open_dataset(root, "test")) + _gt_results(open_dataset(root, "val"))
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(both))
    out = tmp_path / "r.json"
    args = ["evaluate", "--dataset", str(root), "--split", "test", "--detections", str(dets), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["mean"]["voc_ap"] == 100.0
    n_val = len(_gt_results(open_dataset(root, "val")))
    assert report["ignored_detections"] == n_val and "outside this split" in result.output


def test_detections_from_another_split_are_a_one_line_error(tmp_path: Path) -> None:
    root = sample_dataset_path()
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(_gt_results(open_dataset(root, "train"))))
    args = ["evaluate", "--dataset", str(root), "--split", "test", "--detections", str(dets)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "Error:" in result.output and "not in the dataset split" in result.output
    assert "Traceback" not in result.output


def test_proposal_quality(tmp_path: Path) -> None:
    root = sample_dataset_path()
    dataset = open_dataset(root, "val")
    props = tmp_path / "proposals"
    store = ProposalStore(props)
    store.prepare({"method": "test"}, [r.image_id for r in dataset.records])
    for i, r in enumerate(dataset.records):
        # Half of the images get their exact ground truth (best overlap 1), the others boxes far away (0).
        boxes = r.boxes + (0.0 if i % 2 == 0 else 5000.0)
        store.write(r.image_id, Proposals.ranked(boxes), r.width, r.height)
    out = tmp_path / "p.json"
    args = ["evaluate", "--dataset", str(root), "--split", "val", "--proposals", str(props), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (report,) = json.loads(out.read_text())["rows"]  # one folder, all its boxes: one row
    assert (report["label"], report["top_n"]) == ("proposals", None)
    labels = [r.labels for r in dataset.records]
    found = np.concatenate([np.full(len(lab), i % 2 == 0) for i, lab in enumerate(labels)])
    labels = np.concatenate(labels)
    assert report["recall@0.5"] == report["recall@0.7"] == np.mean(found)
    assert report["recall"] == [np.mean(found)] * 10 and report["AR"] == pytest.approx(np.mean(found))
    # MABO: the mean over classes of each class's average best overlap (here 1 or 0 per box).
    expected = np.mean([found[labels == k].mean() for k in np.unique(labels)])
    assert report["MABO"] == np.float64(expected)
    assert report["boxes/img"] == np.mean([len(r.boxes) for r in dataset.records])


def test_needs_exactly_one_mode(tmp_path: Path, monkeypatch) -> None:
    root = str(sample_dataset_path())
    monkeypatch.chdir(tmp_path)  # none given: ./detections, which is not there
    result = CliRunner().invoke(cli, ["evaluate", "--dataset", root, "--split", "test"])
    assert result.exit_code == 1 and "no ./detections: run rcnn detect IMAGES first" in result.output
    (tmp_path / "d.json").write_text("[]")
    both = ["--detections", "d.json", "--svd-sweep"]
    result = CliRunner().invoke(cli, ["evaluate", "--dataset", root, "--split", "test", *both])
    assert result.exit_code == 1 and "exactly one of" in result.output


def test_svd_sweep_table(tmp_path: Path) -> None:
    from rcnn_cli.data import make_synthetic_voc

    root = make_synthetic_voc(tmp_path / "voc", num_images=4, image_size=(64, 48), min_size=8)
    dataset = open_dataset(root, "trainval")
    model = small_checkpoint(tmp_path / "m.pt", class_names=dataset.class_names)
    props = tmp_path / "props"
    store = ProposalStore(props)
    store.prepare({"method": "test"}, [r.image_id for r in dataset.records])
    for r in dataset.records:  # the ground truth plus two loose boxes
        boxes = np.concatenate([r.boxes, [[0, 0, 32, 24], [20, 10, 60, 44]]]).astype(np.float32)
        store.write(r.image_id, Proposals.ranked(boxes), r.width, r.height)
    out = tmp_path / "sweep.json"
    args = ["evaluate", "--svd-sweep", "--model", str(model), "--dataset", str(root), "--split", "trainval"]
    result = CliRunner().invoke(
        cli,
        [*args, "--proposals", str(props), "--sweep-ranks", "none;fc6=48,fc7=32;fc6=4,fc7=2", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["svd_ranks"] for r in rows] == ["none (original)", "fc6=48,fc7=32", "fc6=4,fc7=2"]
    assert rows[1]["mAP"] == rows[0]["mAP"]  # full rank: the same detections
    for row in rows:
        assert row["fc_ms_per_image"] > 0 and row["detect_ms_per_image"] >= row["fc_ms_per_image"]
        assert 0.0 <= row["mAP"] <= 100.0 and 0.0 <= row["mAP07"] <= 100.0


def test_svd_sweep_with_distillation_adds_a_distilled_row_per_setting(tmp_path: Path) -> None:
    from rcnn_cli.data import make_synthetic_voc

    root = make_synthetic_voc(tmp_path / "voc", num_images=6, image_size=(64, 48), min_size=8)
    full = open_dataset(root)
    model = small_checkpoint(tmp_path / "m.pt", class_names=full.class_names)
    props = tmp_path / "props"
    store = ProposalStore(props)
    store.prepare({"method": "test"}, [r.image_id for r in full.records])
    for r in full.records:  # every split's images: the ground truth plus two loose boxes
        boxes = np.concatenate([r.boxes, [[0, 0, 32, 24], [20, 10, 60, 44]]]).astype(np.float32)
        store.write(r.image_id, Proposals.ranked(boxes), r.width, r.height)
    out = tmp_path / "sweep.json"
    args = ["evaluate", "--svd-sweep", "--model", str(model), "--dataset", str(root), "--split", "test"]
    args += ["--proposals", str(props), "--sweep-ranks", "none;fc6=4,fc7=2", "--passes", "1"]
    result = CliRunner().invoke(
        cli, [*args, "--distill-split", "trainval", "--distill-steps", "20", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["svd_ranks"] for r in rows] == ["none (original)", "fc6=4,fc7=2", "fc6=4,fc7=2 +distill"]
    same = CliRunner().invoke(cli, [*args, "--distill-split", "test"])
    assert same.exit_code == 1 and "is the split being evaluated" in same.output
    alone = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--dataset",
            str(root),
            "--split",
            "test",
            "--proposals",
            str(props),
            "--distill-split",
            "trainval",
        ],
    )
    assert alone.exit_code == 1 and "goes with --svd-sweep" in alone.output
