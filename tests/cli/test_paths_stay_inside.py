"""Image ids from the user's annotations never name a file outside the -o folder (issue 11).

Each route that turns an id into a file name runs through the CLI: ``rcnn detect`` (per_image/,
pictures/), ``rcnn extract`` (feature maps), ``rcnn propose`` (proposal files), with COCO ids that
climb out (``../../x``) or are absolute, and a VOC split line that climbs out of per_image/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rcnn_cli.artifacts import safe_stem
from rcnn_cli.cli.main import cli
from support.inference import small_checkpoint, write_images

pytestmark = pytest.mark.usefixtures("one_thread")


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _coco(tmp_path: Path, ids: list[str]) -> Path:
    """A COCO JSON (deep in tmp_path, so that ``../`` ids can climb) with one image per id."""
    images = tmp_path / "data" / "deep" / "images"
    paths = write_images(images, len(ids))
    doc = {
        "images": [
            {"id": image_id, "file_name": f"images/{p.name}", "width": 64, "height": 48}
            for image_id, p in zip(ids, paths, strict=True)
        ],
        "annotations": [],
        "categories": [{"id": 1, "name": "cell"}, {"id": 2, "name": "platelet"}],
    }
    path = images.parent / "coco.json"
    path.write_text(json.dumps(doc))
    return path


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(cli, ["-q", "--device", "cpu", *args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def _escaping_ids(tmp_path: Path) -> list[str]:
    return ["../../../../escaped_rel", str(tmp_path / "escaped_abs"), "plain"]


def test_detect_keeps_coco_ids_inside_the_output_folder(tmp_path: Path) -> None:
    ids = _escaping_ids(tmp_path)
    coco = _coco(tmp_path, ids)
    model = small_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "a" / "b" / "out"
    before = _files(tmp_path)
    _run(["detect", "--dataset", str(coco), "--model", str(model), "--proposal-method", "dense",
          "--max-proposals", "20", "-o", str(out)])  # fmt: skip
    written = _files(tmp_path) - before
    assert written and all(out in p.parents for p in written), sorted(map(str, written))
    names = {p.relative_to(out).as_posix() for p in written}
    for image_id in ids:
        assert f"per_image/{safe_stem(image_id)}.json" in names
        assert f"pictures/{safe_stem(image_id)}.jpg" in names
    assert "per_image/plain.json" in names  # a safe id keeps its own name
    # The per-image files still say which image they are.
    back = {json.loads((out / "per_image" / f"{safe_stem(i)}.json").read_text())["image_id"] for i in ids}
    assert back == set(ids)
    # A rerun resumes: the readers find the files under the same names.
    again = CliRunner().invoke(cli, ["--device", "cpu", "detect", "--dataset", str(coco), "--model",
                                     str(model), "--proposal-method", "dense", "--max-proposals", "20",
                                     "-o", str(out)])  # fmt: skip
    assert again.exit_code == 0 and f"{len(ids)} resumed" in again.output, again.output


def test_extract_and_propose_keep_coco_ids_inside(tmp_path: Path) -> None:
    ids = _escaping_ids(tmp_path)
    coco = _coco(tmp_path, ids)
    before = _files(tmp_path)
    feats = tmp_path / "a" / "b" / "feats"
    _run(["extract", str(coco), "-o", str(feats), "--scale", "48", "--max-size", "64"])
    props = tmp_path / "a" / "b" / "props"
    _run(["propose", str(coco), "--method", "dense", "--max-proposals", "10", "-o", str(props)])
    written = _files(tmp_path) - before
    assert all(feats in p.parents or props in p.parents for p in written), sorted(map(str, written))
    for image_id in ids:
        assert (feats / f"{safe_stem(image_id)}.npz").is_file()
        assert (props / f"{safe_stem(image_id)}.npz").is_file()


def test_voc_split_line_that_climbs_out_is_rejected_by_the_loader(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    write_images(root / "JPEGImages", 2)
    (root / "Annotations").mkdir()
    for name in ("img0", "img1"):
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>64</width><height>48</height>"
            "</size></annotation>"
        )
    split = root / "ImageSets" / "Main" / "test.txt"
    split.parent.mkdir(parents=True)
    split.write_text("img0\n../Annotations/img1\n")  # inside the dataset, but a path, not an id
    model = small_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["--device", "cpu", "detect", "--dataset", str(root), "--split",
                                      "test", "--model", str(model), "--proposal-method", "dense",
                                      "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{split}:2: path escapes dataset root: image id '../Annotations/img1'" in result.output
    assert sorted(p.name for p in (out / "per_image").iterdir()) == ["img0.json"]
    assert not (out / "Annotations").exists()
    stop = CliRunner().invoke(cli, ["check", str(root), "--split", "test", "--on-error", "stop"])
    assert stop.exit_code == 1 and f"{split}:2" in stop.output and "Traceback" not in stop.output
