"""The detection engine on a known tiny case: outputs, COCO compatibility, timing, resume, skips."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rcnn_cli.data import load_images, read_image
from rcnn_cli.errors import ArtifactError
from rcnn_cli.evaluation.coco_format import dataset_to_coco
from rcnn_cli.inference.detect import DetectConfig, Detector
from rcnn_cli.inference.detections_folder import detect_records
from rcnn_cli.proposals.sources import folder_source
from support.inference import CLASS_NAMES, TableModel, write_images, write_proposals

P0, P1, P2 = [0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]
PROBS = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.90, 0.04, 0.06]])


def _detector(**config) -> Detector:
    return Detector(TableModel(PROBS.log(), torch.zeros(3, 12)), CLASS_NAMES, DetectConfig(**config))


def _setup(tmp_path: Path, count: int = 2):
    write_images(tmp_path / "images", count)
    dataset = load_images(tmp_path / "images")
    props = write_proposals(tmp_path / "props", [r.image_id for r in dataset.records], np.array([P0, P1, P2]))
    return dataset, props


def test_known_case_writes_coco_results_per_image_json_and_pictures(tmp_path: Path) -> None:
    dataset, props = _setup(tmp_path)
    out = tmp_path / "out"
    summary = detect_records(_detector(), dataset.records, folder_source(props), out, params={"p": 1})
    assert summary.processed == 2 and not summary.skipped
    results = json.loads((out / "detections.json").read_text())
    # Per image: class 1 at P0 (.8), class 2 at P1 (.3) and P2 (.06), as in test_postprocess.
    assert [(d["image_id"], d["category_id"], d["bbox"], d["score"]) for d in results[:3]] == [
        ("img0", 1, [0.0, 0.0, 10.0, 10.0], 0.8),
        ("img0", 2, [1.0, 1.0, 10.0, 10.0], 0.3),
        ("img0", 2, [20.0, 20.0, 10.0, 10.0], 0.06),
    ]
    doc = json.loads((out / "per_image" / "img1.json").read_text())
    assert doc["detections"][0] == {"label": 1, "class": "cell", "score": 0.8, "box": P0}
    picture = cv2.imread(str(out / "pictures" / "img0.jpg"))
    original = read_image(dataset.records[0].path)[:, :, ::-1]
    assert picture.shape == original.shape
    assert np.abs(picture.astype(int) - original).max() > 100  # boxes and labels drawn on it


def test_detections_json_is_accepted_by_pycocotools_loadres_as_it_is(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    dataset, props = _setup(tmp_path)
    detect_records(_detector(), dataset.records, folder_source(props), tmp_path / "out", params={})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset_to_coco(dataset.records, CLASS_NAMES)
        gt.createIndex()
        dt = gt.loadRes(str(tmp_path / "out" / "detections.json"))
    assert len(dt.getAnnIds()) == 6


def test_every_stage_is_timed(tmp_path: Path) -> None:
    dataset, props = _setup(tmp_path)
    detector = _detector()
    detect_records(detector, dataset.records, folder_source(props), tmp_path / "out", params={}, draw=False)
    seconds = detector.timer.seconds
    for stage in ("read", "proposals", "conv", "roi_pool", "fc6", "fc7", "head", "nms"):
        assert seconds[stage] > 0, stage
    assert detector.timer.images == 2
    assert {row["stage"] for row in detector.timer.rows()} >= {"fc6", "fc7", "nms"}
    assert json.loads((tmp_path / "out" / "timing.json").read_text())["images"] == 2


def test_rerun_resumes_and_other_settings_are_refused(tmp_path: Path) -> None:
    dataset, props = _setup(tmp_path)
    out = tmp_path / "out"
    first = detect_records(_detector(), dataset.records, folder_source(props), out, params={"nms": 0.3})
    again = detect_records(_detector(), dataset.records, folder_source(props), out, params={"nms": 0.3})
    assert again.processed == 0 and again.resumed == 2
    assert again.results == first.results
    with pytest.raises(ArtifactError, match=r"nms: 0\.3 on disk, 0\.5 now.*--overwrite"):
        detect_records(_detector(), dataset.records, folder_source(props), out, params={"nms": 0.5})
    new = detect_records(
        _detector(), dataset.records, folder_source(props), out, params={"nms": 0.5}, overwrite=True
    )
    assert new.processed == 2 and new.resumed == 0


def test_bad_image_and_missing_proposals_are_skipped_and_reported(tmp_path: Path) -> None:
    dataset, props = _setup(tmp_path, count=3)
    (props / "img1.npz").unlink()
    dataset.records[2].path.write_bytes(b"\xff\xd8\xff garbage, not a JPEG")
    logged: list[str] = []

    class Log:
        def log(self, message: str) -> None:
            logged.append(message)

        def advance(self, n: int = 1, extra: str = "") -> None:
            pass

    out = tmp_path / "out"
    summary = detect_records(
        _detector(), dataset.records, folder_source(props), out, params={}, reporter=Log()
    )
    assert summary.processed == 1 and len(summary.skipped) == 2
    assert any("img1.npz" in m for m in logged) and any("img2.jpg" in m for m in logged)
    assert {d["image_id"] for d in json.loads((out / "detections.json").read_text())} == {"img0"}


def test_degenerate_and_excess_proposals_are_dropped() -> None:
    rgb = np.zeros((40, 40, 3), np.uint8)
    detector = _detector(max_proposals=2)
    # Only P0 and P1 are used: P2's class-2 detection (.06) disappears.
    assert detector.detect(rgb, np.array([P0, P1, P2])).scores.tolist() == pytest.approx([0.8, 0.3])
    assert len(_detector().detect(rgb, np.array([[5.0, 5.0, 5.0, 9.0]]))) == 0
    assert len(_detector().detect(rgb, np.zeros((0, 4)))) == 0


def test_the_callers_proposals_are_not_modified() -> None:
    proposals = np.array([[-5.0, -5.0, 100.0, 100.0], P0, P2], dtype=np.float32)
    before = proposals.copy()
    _detector().detect(np.zeros((40, 40, 3), np.uint8), proposals)
    np.testing.assert_array_equal(proposals, before)


def test_pictures_show_only_boxes_above_the_draw_threshold() -> None:
    from rcnn_cli.inference.drawing import render_detections

    rgb = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    dets = _detector().detect(rgb, np.array([P0, P1, P2]))  # scores .8, .3, .06
    np.testing.assert_array_equal(render_detections(rgb, dets, CLASS_NAMES, min_score=0.9), rgb[:, :, ::-1])
    only_best = render_detections(rgb, dets, CLASS_NAMES, min_score=0.5)
    everything = render_detections(rgb, dets, CLASS_NAMES)
    assert (only_best != rgb[:, :, ::-1]).any() and (everything != only_best).any()


def test_an_image_whose_json_exists_has_its_picture(tmp_path, monkeypatch) -> None:
    """The picture is written before the JSON: a run stopped while it draws leaves no JSON for that
    image, so the rerun detects and draws it instead of resuming it without a picture."""
    import rcnn_cli.inference.drawing as drawing

    dataset, props = _setup(tmp_path)
    out = tmp_path / "out"
    draw = drawing.draw_detections
    calls: list[object] = []

    def stopped_at_the_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the run were stopped while drawing img1
        return draw(*args, **kwargs)

    monkeypatch.setattr(drawing, "draw_detections", stopped_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        detect_records(_detector(), dataset.records, folder_source(props), out, params={})
    assert (out / "per_image" / "img0.json").exists() and (out / "pictures" / "img0.jpg").exists()
    assert not (out / "per_image" / "img1.json").exists()
    monkeypatch.setattr(drawing, "draw_detections", draw)
    summary = detect_records(_detector(), dataset.records, folder_source(props), out, params={})
    assert (summary.resumed, summary.processed) == (1, 1)
    assert (out / "pictures" / "img1.jpg").exists()
