"""``rcnn check`` through CliRunner: a clean dataset, every problem reported with its file, --on-error stop,
and --to-coco."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.data import load_coco, load_voc, make_synthetic_voc, sample_dataset_path


@pytest.fixture
def broken_voc(tmp_path: Path) -> Path:
    """A synthetic VOC folder with one zero-area box, one box outside, an unknown class, an empty image."""
    root = make_synthetic_voc(tmp_path / "voc", 6, seed=0)
    xml = root / "Annotations" / "000001.xml"
    text = xml.read_text()
    extra = (
        "<object><name>circle</name><difficult/><bndbox><xmin>7</xmin><ymin>7</ymin><xmax>7</xmax>"
        "<ymax>9</ymax></bndbox></object>"
        "<object><name>square</name><bndbox><xmin>150</xmin><ymin>1</ymin><xmax>200</xmax>"
        "<ymax>9</ymax></bndbox></object>"
    )
    xml.write_text(text.replace("</annotation>", extra + "</annotation>"))
    (root / "JPEGImages" / "000002.png").write_bytes(b"")
    return root


def test_check_a_clean_dataset() -> None:
    result = CliRunner().invoke(cli, ["-q", "check", str(sample_dataset_path()), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "20 good images" in result.output and "no problems" in result.output


def test_check_reports_every_problem_with_its_file(broken_voc: Path) -> None:
    result = CliRunner().invoke(cli, ["-q", "check", str(broken_voc), "--classes", "circle,square"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    problems = [line for line in lines if line.startswith(str(broken_voc))]
    assert any("000001.xml: zero or negative area" in line for line in problems)
    assert any("000001.xml: box outside image" in line for line in problems)
    assert any("000002.png: unreadable image: empty file" in line for line in problems)
    unknown = [line for line in problems if "unknown class" in line and "'triangle'" in line]
    triangles = sum(
        int((r.labels == 3).sum()) for r in load_voc(broken_voc, None).records if r.image_id != "000002"
    )
    assert len(unknown) == triangles
    assert len(problems) == 3 + triangles
    assert "Traceback" not in result.output


def test_check_stop_at_first_problem_is_one_line(broken_voc: Path) -> None:
    result = CliRunner().invoke(cli, ["-q", "check", str(broken_voc), "--on-error", "stop"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "000001.xml: zero or negative area" in result.output


def test_missing_split_is_a_one_line_error(broken_voc: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(broken_voc), "--split", "nope"])
    assert result.exit_code == 1
    assert "Error: " in result.output and "no split file for split 'nope'" in result.output


def test_to_coco_writes_only_the_good_boxes(broken_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "coco" / "voc.json"
    result = CliRunner().invoke(cli, ["-q", "check", str(broken_voc), "--to-coco", str(out)])
    assert result.exit_code == 1  # problems were found, and the good part was still written
    coco = load_coco(out)
    assert coco.problems == ()
    good = [r for r in load_voc(broken_voc, None).records if r.image_id != "000002"]
    assert len(coco.records) == len(good) == 5
    assert sum(r.num_boxes for r in coco.records) == sum(r.num_boxes for r in good)
    assert json.loads(out.read_text())["categories"][0]["name"] == "circle"
    # The converted file checks clean.
    again = CliRunner().invoke(cli, ["-q", "check", str(out)])
    assert again.exit_code == 0, again.output


def test_check_is_listed_with_an_example() -> None:
    result = CliRunner().invoke(cli, ["check", "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "rcnn check" in result.output
