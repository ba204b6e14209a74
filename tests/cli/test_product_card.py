"""The three commands of the product card, as typed, in a fresh folder: each stage reads what the one
before it left in the current folder (./proposals, ./runs/latest, ./detections), and says so.

``images/`` is a copy of a few images of the bundled BCCD sample in its VOC layout: plain images have no
labels, and ``rcnn train`` needs the annotations, which ``rcnn propose images/`` records the folder of.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rcnn_cli.cli.main import cli
from rcnn_cli.data import sample_dataset_path

pytestmark = pytest.mark.usefixtures("one_thread")

#: Enough for minibatches of N = 2 and a split of its own, few enough for a test.
IMAGES = 6


def rcnn(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def copy_sample(folder: Path, count: int = IMAGES) -> list[str]:
    """The first ``count`` trainval images of the sample, with their annotations, as a VOC folder whose
    trainval split lists them all; returns their ids."""
    sample = sample_dataset_path()
    ids = (sample / "ImageSets" / "Main" / "trainval.txt").read_text().split()[:count]
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True)
    for image_id in ids:
        shutil.copy(sample / "JPEGImages" / f"{image_id}.jpg", folder / "JPEGImages")
        shutil.copy(sample / "Annotations" / f"{image_id}.xml", folder / "Annotations")
    (folder / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(ids) + "\n")
    return ids


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[Path]:
    """A folder holding ``images/`` and ``img.jpg``, where the three commands ran; the tests run there."""
    root = tmp_path_factory.mktemp("card")
    ids = copy_sample(root / "images")
    shutil.copy(root / "images" / "JPEGImages" / f"{ids[0]}.jpg", root / "img.jpg")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        outputs = {
            "propose": rcnn("propose", "images/"),
            "train": rcnn("train", "--sampler", "hierarchical", "--iters", "2"),
            "detect": rcnn("detect", "img.jpg", "--svd-rank", "256"),
        }
        (root / "outputs.json").write_text(
            json.dumps({k: [r.exit_code, r.output] for k, r in outputs.items()})
        )
        yield root


def output_of(project: Path, command: str) -> str:
    code, output = json.loads((project / "outputs.json").read_text())[command]
    assert code == 0, output
    return output


def test_propose_writes_proposals_naming_their_dataset(project: Path) -> None:
    output = output_of(project, "propose")
    assert "using ./proposals as the proposals folder" in output
    assert len(list((project / "proposals").glob("*.npz"))) == IMAGES
    extra = json.loads((project / "proposals" / "manifest.json").read_text())["extra"]
    # Relative to the folder itself, so that the project can move as a whole.
    assert extra["dataset"] == "../images" and extra["split"] is None


def test_train_takes_the_proposals_and_marks_the_latest_run(project: Path) -> None:
    output = output_of(project, "train")
    assert "using ./proposals, the proposals of rcnn propose" in output
    assert "using dataset ./images, split trainval, as ./proposals/manifest.json names it" in output
    (name,) = [p.name for p in (project / "runs").iterdir() if p.is_dir()]
    assert name.endswith("-fast-rcnn") and f"using ./runs/{name} as the run folder" in output
    assert (project / "runs" / name / "model.pt").is_file()
    assert (project / "runs" / "latest").read_text().strip() == name
    assert "trained 2 iterations" in output


def test_detect_uses_the_latest_model_and_its_proposal_method(project: Path) -> None:
    output = output_of(project, "detect")
    name = (project / "runs" / "latest").read_text().strip()
    assert f"using ./runs/{name}/model.pt, the latest run" in output
    assert "using selective-search proposals (fast, at most 2000 an image), as ./proposals made" in output
    assert "using ./detections as the detections folder" in output
    assert "Traceback" not in output
    results = json.loads((project / "detections" / "detections.json").read_text())
    assert isinstance(results, list) and {r["image_id"] for r in results} <= {"img"}
    assert (project / "detections" / "pictures" / "img.jpg").is_file()
    params = json.loads((project / "detections" / "manifest.json").read_text())["params"]
    assert params["svd_ranks"] == {"fc6": 256, "fc7": 256} and params["proposals"] == "selective-search:fast"


def test_compress_defaults_to_the_latest_run_at_the_papers_fractions(project: Path, monkeypatch) -> None:
    from rcnn_cli.models import load_checkpoint

    monkeypatch.chdir(project)
    run = project / "runs" / (project / "runs" / "latest").read_text().strip()
    result = rcnn("compress")
    assert result.exit_code == 0, result.output
    assert "fc6=128 (1/4), fc7=32 (1/16)" in result.output  # the small backbone's fc layers are 512 wide
    _, meta = load_checkpoint(run / "model_svd.pt")
    assert meta["svd_ranks"] == {"fc6": 128, "fc7": 32}
    # The README's example, on the same default backbone.
    readme = rcnn("compress", str(run / "model.pt"), "-o", "readme.pt", "--svd-ranks", "fc6=128,fc7=32")
    assert readme.exit_code == 0, readme.output
    assert "using" not in readme.output


def test_evaluate_finds_the_ground_truth_of_what_was_detected(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    # ./detections holds img.jpg, a copy outside the dataset: nothing to measure it against.
    plain = rcnn("evaluate")
    assert plain.exit_code == 1 and "Traceback" not in plain.output
    assert "./detections was made from images without ground truth: give --dataset" in plain.output
    # One image of the model's own dataset: measured against its annotation alone.
    first = sorted((project / "images" / "JPEGImages").iterdir())[0]
    assert rcnn("detect", str(first), "-o", "one", "--no-pictures").exit_code == 0
    one = rcnn("evaluate", "--detections", "one", "--no-coco", "-o", "one.json")
    assert one.exit_code == 0, one.output
    assert "using dataset ./images, the model's, for the 1 detected images" in one.output
    assert json.loads(Path("one.json").read_text())["images"] == 1
    # Detected on the dataset itself: measured on all of it.
    quick = ["--proposal-method", "dense", "--max-proposals", "50", "--no-pictures"]
    assert rcnn("detect", "images/", "-o", "all", *quick).exit_code == 0
    every = rcnn("evaluate", "--detections", "all", "--no-coco", "-o", "all.json")
    assert every.exit_code == 0, every.output
    assert "using dataset ./images, the one ./all was made from" in every.output
    assert json.loads(Path("all.json").read_text())["images"] == IMAGES


def test_explicit_options_win_over_the_defaults(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    latest = (project / "runs" / "latest").read_text()
    props = rcnn("propose", "images/", "-o", "dense", "--method", "dense", "--max-proposals", "300")
    assert props.exit_code == 0 and "using" not in props.output
    args = ["--dataset", "images", "--split", "trainval", "--proposals", "dense", "-o", "elsewhere/run"]
    trained = rcnn("train", *args, "--iters", "1", "--scales", "96", "--max-size", "200", "-R", "16")
    assert trained.exit_code == 0, trained.output
    assert "using" not in trained.output and (project / "elsewhere" / "run" / "model.pt").is_file()
    assert (project / "runs" / "latest").read_text() == latest  # a run outside ./runs is not the latest
    model = str(project / "elsewhere" / "run" / "model.pt")
    detected = rcnn("detect", "img.jpg", "--model", model, "--proposal-method", "dense", "-o", "mine")
    assert detected.exit_code == 0 and "using" not in detected.output
    assert json.loads((project / "mine" / "manifest.json").read_text())["params"]["proposals"] == "dense:fast"
    # Without --proposal-method the model's own training proposals are used: dense, at most 300.
    again = rcnn("detect", "img.jpg", "--model", model, "-o", "mine2", "--no-pictures")
    assert again.exit_code == 0 and "using dense proposals (fast, at most 300 an image)" in again.output
    # A Selective Search mode given wins over the one the training proposals were made with.
    single = rcnn("detect", "img.jpg", "--proposal-mode", "single", "-o", "single", "--no-pictures")
    assert single.exit_code == 0 and "using selective-search proposals (single," in single.output
    assert (
        json.loads(Path("single/manifest.json").read_text())["params"]["proposals"]
        == "selective-search:single"
    )


def test_a_folder_made_before_the_dataset_was_recorded_still_trains(
    project: Path, tmp_path, monkeypatch
) -> None:
    """A proposals folder of an older rcnn (its manifest names no dataset) is read as before; only the
    dataset default needs --dataset then."""
    import dataclasses

    from rcnn_cli.artifacts import read_manifest, write_manifest

    shutil.copytree(project / "proposals", tmp_path / "proposals")
    shutil.copytree(project / "images", tmp_path / "images")
    old = read_manifest(tmp_path / "proposals", "proposals")
    write_manifest(tmp_path / "proposals", dataclasses.replace(old, extra={"num_images": IMAGES}))
    monkeypatch.chdir(tmp_path)
    tiny = ["--iters", "1", "--scales", "96", "--max-size", "200", "--fc-dims", "32,32", "-R", "16"]
    missing = rcnn("train", *tiny)
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert "./proposals/manifest.json does not name one dataset folder" in missing.output
    given = rcnn("train", "--dataset", "images", *tiny)
    assert given.exit_code == 0, given.output


@pytest.mark.parametrize(
    "command,message",
    [
        (["train"], "Error: no ./proposals: run rcnn propose IMAGES first, or give --proposals FOLDER"),
        (["train", "--rpn"], "Error: no --dataset and no ./proposals that names one: give --dataset DATA"),
        (["detect", "img.jpg"], "Error: no ./runs/latest: run rcnn train first, or give the model"),
        (["compress"], "Error: no ./runs/latest: run rcnn train first"),
        (["export"], "Error: no ./runs/latest: run rcnn train first"),
        (["evaluate"], "Error: no ./detections: run rcnn detect IMAGES first, or give --detections"),
        (["train", "--resume"], "Error: no ./proposals: run rcnn propose IMAGES first"),
    ],
)
def test_a_missing_default_says_what_to_run_first(tmp_path: Path, monkeypatch, command, message) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "img.jpg").write_bytes(
        (sample_dataset_path() / "JPEGImages" / "BloodImage_00000.jpg").read_bytes()
    )
    result = rcnn(*command)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith(message), result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.jpg"]  # nothing written


def test_runs_of_one_day_get_names_of_their_own(tmp_path: Path, monkeypatch) -> None:
    from datetime import date

    from rcnn_cli.cli.defaults import mark_latest, run_folder

    monkeypatch.chdir(tmp_path)
    day = date(2026, 12, 1)
    first = run_folder(None, "fast-rcnn", resume=False, today=day)
    assert first == str(Path("runs") / "2026-12-01-fast-rcnn")
    Path(first).mkdir(parents=True)
    second = run_folder(None, "fast-rcnn", resume=False, today=day)
    assert second == str(Path("runs") / "2026-12-01-fast-rcnn-2")
    mark_latest(second)
    assert Path("runs/latest").read_text() == "2026-12-01-fast-rcnn-2\n"
    mark_latest(tmp_path / "elsewhere")  # not a folder of ./runs: the latest stays
    assert Path("runs/latest").read_text() == "2026-12-01-fast-rcnn-2\n"
    assert run_folder("mine", "fast-rcnn", resume=True) == "mine"  # -o wins, even with --resume


def test_faster_rcnn_takes_only_the_dataset_default(project: Path, tmp_path: Path, monkeypatch) -> None:
    """--rpn needs no proposals: ./proposals only names the dataset, and detect proposes with the RPN."""
    shutil.copytree(project / "proposals", tmp_path / "proposals")
    shutil.copytree(project / "images", tmp_path / "images")
    shutil.copy(project / "img.jpg", tmp_path / "img.jpg")
    monkeypatch.chdir(tmp_path)
    tiny = [
        "--scales",
        "96",
        "--max-size",
        "200",
        "--fc-dims",
        "32,32",
        "-R",
        "16",
        "--anchor-scales",
        "24,48",
    ]
    trained = rcnn("train", "--rpn", "--iters", "1", *tiny)
    assert trained.exit_code == 0, trained.output
    assert "using dataset ./images, split trainval, as ./proposals/manifest.json names it" in trained.output
    assert "using ./proposals," not in trained.output
    name = Path("runs/latest").read_text().strip()
    assert name.endswith("-faster-rcnn")
    detected = rcnn("detect", "img.jpg", "--no-pictures")
    assert detected.exit_code == 0, detected.output
    assert "using the model's own region proposal network for the proposals" in detected.output
