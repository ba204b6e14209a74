"""``rcnn show KIND``: each kind writes a PNG from the command line, every subcommand has a worked
example, its --help loads nothing heavy, and bad input is one ``Error:`` line naming the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from support.inference import small_checkpoint
from support.pictures import assert_picture, sample_path

KINDS = ("proposals", "warp", "rois", "pooling", "anchors", "detections")
IMAGE = "BloodImage_00007"


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["--device", "cpu", "-q", "show", *args])


def dataset(image_id: str = IMAGE) -> list[str]:
    return ["--dataset", str(sample_path()), "--image-id", image_id]


def image_file(image_id: str = IMAGE) -> str:
    return str(sample_path() / "JPEGImages" / f"{image_id}.jpg")


def assert_one_line_error(result, *parts: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error:"), result.output
    assert all(part in lines[-1] for part in parts), result.output


def test_every_kind_is_listed_with_a_worked_example() -> None:
    listed = run("--help")
    assert listed.exit_code == 0 and "Example" in listed.output
    for kind in KINDS:
        assert kind in listed.output
        result = run(kind, "--help")
        assert result.exit_code == 0, result.output
        assert "Example" in result.output and f"rcnn show {kind}" in result.output, kind


def test_the_help_of_every_kind_loads_no_torch() -> None:
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from rcnn_cli.cli.main import cli\n"
        f"for kind in {KINDS!r}:\n"
        "    assert CliRunner().invoke(cli, ['show', kind, '--help']).exit_code == 0, kind\n"
        "heavy = ('torch', 'cv2', 'numpy', 'PIL', 'matplotlib')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "", f"imported by 'rcnn show KIND --help': {found.stdout.strip()}"


def test_proposals_on_the_fly_and_from_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "fly.png"
    result = run("proposals", *dataset(), "--proposal-method", "dense", "--top", "20", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert_picture(out)
    folder = tmp_path / "props"
    made = CliRunner().invoke(cli, ["-q", "propose", image_file(), "-o", str(folder), "--method", "dense"])
    assert made.exit_code == 0, made.output
    result = run("proposals", image_file(), "--proposals", str(folder), "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert_picture(tmp_path / f"{IMAGE}_proposals.png")


def test_rois_pooling_and_anchors_of_a_sample_image(tmp_path: Path) -> None:
    rois = run("rois", *dataset(), "--proposal-method", "dense", "--thumbnails", "4", "-o", str(tmp_path))
    assert rois.exit_code == 0, rois.output
    pooling = run(
        "pooling", *dataset(), "--box", "100,120,190,200", "--backbone", "vgg16", "-o", str(tmp_path)
    )
    assert pooling.exit_code == 0, pooling.output
    anchors = run("anchors", image_file(), "--at", "320,240", "-o", str(tmp_path))
    assert anchors.exit_code == 0, anchors.output
    for kind in ("rois", "pooling", "anchors"):
        assert_picture(tmp_path / f"{IMAGE}_{kind}.png")


def test_warp_of_gt_boxes_and_proposals(tmp_path: Path) -> None:
    result = run("warp", *dataset(), "--proposal-method", "dense", "--count", "3", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert_picture(tmp_path / f"{IMAGE}_warp.png")
    caffenet = run(
        "warp",
        image_file(),
        "--proposal-method",
        "dense",
        "--backbone",
        "caffenet",
        "-o",
        str(tmp_path / "c.png"),
    )
    assert caffenet.exit_code == 0, caffenet.output  # an image without ground truth: proposals only
    assert_picture(tmp_path / "c.png")
    assert_one_line_error(run("warp", image_file(), "-o", str(tmp_path / "none.png")), "no box to warp")


def test_a_models_features_anchors_and_detections(tmp_path: Path) -> None:
    import torch

    from rcnn_cli.models import save_checkpoint
    from rcnn_cli.models.fast_rcnn import default_config
    from rcnn_cli.models.faster_rcnn import build_model, with_rpn

    fast = small_checkpoint(tmp_path / "fast.pt")
    torch.manual_seed(0)
    config = default_config("small", 2, fc6_dim=16, fc7_dim=16, scales=(240,), max_size=400)
    faster = tmp_path / "faster.pt"
    save_checkpoint(faster, build_model(with_rpn(config)), {"class_names": ["a", "b"]})

    pooling = run(
        "pooling", image_file(), "--model", str(fast), "--channel", "3", "-o", str(tmp_path / "p.png")
    )
    assert pooling.exit_code == 0, pooling.output
    assert_picture(tmp_path / "p.png")
    anchors = run("anchors", *dataset(), "--model", str(faster), "-o", str(tmp_path / "a.png"))
    assert anchors.exit_code == 0, anchors.output
    assert_picture(tmp_path / "a.png")

    by_model = run(
        "detections", image_file(), "--model", str(fast), "--proposal-method", "dense",
        "--draw-threshold", "0", "-o", str(tmp_path / "d.png"),
    )  # fmt: skip
    assert by_model.exit_code == 0, by_model.output
    assert_picture(tmp_path / "d.png", min_side=400)
    dets = tmp_path / "dets"
    made = CliRunner().invoke(
        cli,
        ["-q", "detect", image_file(), "--model", str(fast), "--proposal-method", "dense", "-o", str(dets)],
    )
    assert made.exit_code == 0, made.output
    from_folder = run("detections", image_file(), "--detections", str(dets), "-o", str(tmp_path / "f.png"))
    assert from_folder.exit_code == 0, from_folder.output
    assert_picture(tmp_path / "f.png", min_side=400)

    assert_one_line_error(run("anchors", image_file(), "--model", str(fast)), "fast.pt", "no anchors")
    assert_one_line_error(
        run("pooling", image_file(), "--model", str(fast), "--backbone", "vgg16"), "--backbone and --model"
    )


@pytest.mark.parametrize("kind", ["proposals", "warp", "rois", "pooling", "anchors", "detections"])
def test_a_missing_image_is_one_line(tmp_path: Path, kind: str) -> None:
    missing = tmp_path / "no_such.jpg"
    extra = {"proposals": ["--proposal-method", "dense"], "rois": ["--proposal-method", "dense"]}
    extra["detections"] = ["--detections", str(tmp_path)]
    result = run(kind, str(missing), *extra.get(kind, []), "-o", str(tmp_path))
    assert_one_line_error(result, str(missing))
    assert not list(tmp_path.glob("*.png"))


def test_bad_folders_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(
        run("proposals", image_file(), "--proposals", str(tmp_path / "nowhere")), "nowhere", "does not exist"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run("detections", image_file(), "--detections", str(empty)), str(empty))
    assert_one_line_error(run("proposals", image_file(), "--proposals", str(empty)), str(empty))
    target = tmp_path / "missing" / "out.png"
    assert_one_line_error(run("anchors", image_file(), "-o", str(target)), str(target), "does not exist")
    assert_one_line_error(run("pooling", *dataset("BloodImage_99999")), "BloodImage_99999")
    assert_one_line_error(run("pooling", image_file(), "--box", "50,10,20,40"), "--box 50,10,20,40")
    assert_one_line_error(run("pooling", image_file(), "--box", "1,2,3"), "4 comma-separated numbers")


def test_rois_need_ground_truth(tmp_path: Path) -> None:
    result = run("rois", image_file(), "--proposal-method", "dense", "-o", str(tmp_path))
    assert_one_line_error(result, f"{IMAGE}.jpg", "--dataset")
