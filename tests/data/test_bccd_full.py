"""The issue's acceptance checks on the whole BCCD dataset, run where the team's shared data is present
(`../shared/data/bccd` beside the checkout, as in CI); skipped with the reason on a bare clone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rcnn_cli.data import load_coco, load_voc, write_coco
from rcnn_cli.data.records import ZERO_AREA
from rcnn_cli.data.validate import check_dataset

BCCD = Path(__file__).resolve().parents[3] / "shared" / "data" / "bccd"
pytestmark = pytest.mark.skipif(not BCCD.is_dir(), reason=f"{BCCD} not present (team data, not shipped)")


def test_check_reports_exactly_the_two_zero_area_boxes() -> None:
    report = check_dataset(BCCD, decode=False)
    assert sorted((Path(p.path).name, p.kind) for p in report.problems) == [
        ("BloodImage_00338.xml", ZERO_AREA),
        ("BloodImage_00343.xml", ZERO_AREA),
    ]
    assert len(report.dataset.records) == 364
    assert report.num_boxes == 4888 - 2


def test_voc_to_coco_and_back_gives_the_same_boxes_and_labels(tmp_path: Path) -> None:
    voc = load_voc(BCCD, None)
    coco = load_coco(write_coco(voc, tmp_path / "bccd.json"))
    assert coco.class_names == voc.class_names and not coco.problems
    by_path = {r.path.resolve(): r for r in coco.records}
    assert len(by_path) == len(voc.records) == 364
    for a in voc.records:
        b = by_path[a.path.resolve()]
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.difficult, b.difficult)
