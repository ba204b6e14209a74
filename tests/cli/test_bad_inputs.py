"""Broken annotation and proposal files through the CLI: one line naming the file, never a traceback.

The cases are the ones the fuzz tests (tests/*/test_fuzz_*.py) found or were written for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner, Result

from rcnn_cli.cli.main import cli
from support.inference import write_images


def _invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    # Only click's own exits: an exception escaping the command would be a traceback for the user.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def _coco(tmp_path: Path, **changes) -> Path:
    write_images(tmp_path, 1)
    doc = {
        "images": [{"id": 1, "file_name": "img0.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        "categories": [{"id": 1, "name": "cell"}],
        **changes,
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc) if not isinstance(doc["images"], str) else doc["images"])
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"annotations": None}, "coco.json: 'annotations' must be a list, not null"),
        ({"categories": {"1": "cell"}}, "coco.json: 'categories' must be a list, not dict"),
        ({"images": "{" + '"images": [' * 50_000}, "coco.json: not valid JSON"),
        ({"images": '{"images": [], "x": 1' + "0" * 5000 + "}"}, "coco.json: not valid JSON"),
    ],
    ids=["null-annotations", "dict-categories", "deep-nesting", "5000-digit-int"],
)
def test_malformed_coco_is_one_error_line(tmp_path: Path, changes: dict, message: str) -> None:
    result = _invoke("check", str(_coco(tmp_path, **changes)))
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ") and message in line


def test_bad_coco_entries_are_each_reported(tmp_path: Path) -> None:
    path = _coco(
        tmp_path,
        images=[{"id": [1], "file_name": "img0.jpg"}, {"id": {"a": 1}, "file_name": "img0.jpg"},
                {"id": 1, "file_name": "img0.jpg"}, {"id": 2, "file_name": "x" * 400}],
        annotations=[{"id": [1], "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                     {"id": 2, "image_id": 1, "category_id": [1], "bbox": [0, 0, 5, 5]},
                     {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10**400, 5]},
                     {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1e-60, 5]},
                     {"id": 5, "image_id": {"x": 1}}],
    )  # fmt: skip
    result = _invoke("check", str(path))
    assert result.exit_code == 1
    for expected in ["lacks an integer id", "annotation id [1] is not an integer", "category_id [1]",
                     "is not four finite numbers", "box outside image", "no such image file",
                     "is not an object with an image_id"]:  # fmt: skip
        assert expected in result.output, expected


def test_bad_voc_fields_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    write_images(root / "JPEGImages", 2)
    (root / "Annotations").mkdir()
    box = (
        "<object><name>cell</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>{}</xmax><ymax>9</ymax>"
        "</bndbox></object>"
    )
    (root / "Annotations" / "img0.xml").write_text(
        "<annotation><filename>img0.jpg</filename><size><width>inf</width><height>1e999</height></size>"
        + box.format("abc") + box.format("1e999") + box.format("9") + "</annotation>"
    )  # fmt: skip
    (root / "Annotations" / "img1.xml").write_text(f"<annotation><filename>{'y' * 400}</filename>")
    result = _invoke("check", str(root))
    assert result.exit_code == 1
    assert "img0.xml: bad coordinates: object 1 (cell): bndbox ['1', '1', 'abc', '9']" in result.output
    assert "img0.xml: bad coordinates: object 2 (cell): bndbox ['1', '1', '1e999', '9'] is not finite" in (
        result.output
    )
    assert "img1.xml: bad annotation file: not valid XML" in result.output
    assert "1 good images, 1 good boxes" in result.output


def test_broken_proposal_files_are_skipped_with_their_names(tmp_path: Path) -> None:
    images = tmp_path / "images"
    write_images(images, 5)
    source = tmp_path / "from"
    source.mkdir()
    (source / "img0.npz").write_bytes(b"PK\x03\x04 not a zip")
    ragged = np.empty((1, 2), dtype=object)
    ragged[0, 0], ragged[0, 1] = np.zeros((2, 4)), np.zeros((3, 3))
    scipy.io.savemat(source / "img1_boxes.mat", {"boxes": ragged})
    (source / "img2.json").write_text(json.dumps({"boxes": [["1", "2", "3", "4"]]}))
    np.savez(source / "img3.npz", boxes=np.array([[1 + 1j, 2, 3, 4]]))
    np.savez(source / "img4.npz", boxes=np.array([[1, 1, 5, 5]], np.float32), scores=np.array([np.nan]))
    out = tmp_path / "p"
    result = _invoke("propose", str(images), "--method", "file", "--from", str(source), "-o", str(out))
    assert result.exit_code == 1  # every image bad: nothing was done, which is an error
    for name, problem in [("img0.npz", "unreadable .npz file"), ("img1_boxes.mat", "are not numbers"),
                          ("img2.json", "are not numbers"), ("img3.npz", "are not numbers"),
                          ("img4.npz", "scores for 'img4' are not all finite")]:  # fmt: skip
        (line,) = [ln for ln in result.output.splitlines() if f"{source / name}: " in ln]
        assert line.startswith("skipped: ") and problem in line, line
    assert "0 images written, 0 already done, 5 bad" in result.output


def test_line_breaks_in_ids_and_names_do_not_break_the_message(tmp_path: Path) -> None:
    path = _coco(tmp_path, images=[{"id": "a\nb", "file_name": "gone\r\n.jpg"}], annotations=[])
    result = _invoke("check", str(path))
    assert result.exit_code == 1
    assert "missing image: image a\\nb (gone\\r\\n.jpg): no such image file" in result.output
    stop = _invoke("check", str(path), "--on-error", "stop")
    assert stop.exit_code == 1 and len(stop.output.strip().splitlines()) == 1, stop.output
