"""``rcnn train`` says what it leaves out: the bad boxes and images the data check finds (summed up as
``rcnn check`` sums them up), and the images ``rcnn propose`` skipped (with propose's own line); then it
trains on the rest (issue: reliability)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from rcnn_cli.cli.main import cli

pytestmark = pytest.mark.usefixtures("one_thread")


def _broken_voc(root: Path) -> tuple[Path, str]:
    """A synthetic VOC folder whose trainval split has a zero-area box, a box outside its image, a box
    that is not four numbers, and a JPEG whose pixels stop half way (its header still fine); returns
    the folder and the id of the cut image."""
    from rcnn_cli.data import make_synthetic_voc

    voc = make_synthetic_voc(root / "voc", 8, seed=2, image_size=(128, 96), min_size=20)
    first, cut, *_ = (voc / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    xml = voc / "Annotations" / f"{first}.xml"
    bad = [(7, 7, 7, 9), (150, 1, 200, 9), ("x", 1, 2, 3)]
    extra = "".join(
        f"<object><name>circle</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
        f"<ymax>{d}</ymax></bndbox></object>"
        for a, b, c, d in bad
    )
    xml.write_text(xml.read_text().replace("</annotation>", extra + "</annotation>"))
    # The cut image as a JPEG whose header still says 128x96 and whose pixels stop half way.
    png, jpeg = voc / "JPEGImages" / f"{cut}.png", voc / "JPEGImages" / f"{cut}.jpg"
    Image.open(png).save(jpeg, quality=95)
    png.unlink()
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    annotation = voc / "Annotations" / f"{cut}.xml"
    annotation.write_text(annotation.read_text().replace(f"{cut}.png", f"{cut}.jpg"))
    return voc, cut


def test_train_sums_up_what_it_drops_and_trains_on_the_rest(tmp_path: Path) -> None:
    runner = CliRunner()
    voc, cut = _broken_voc(tmp_path)
    props = str(tmp_path / "props")
    propose = runner.invoke(
        cli, ["propose", str(voc), "--split", "trainval", "-o", props, "--mode", "single"]
    )
    assert propose.exit_code == 0, propose.output
    (skipped,) = [line for line in propose.output.splitlines() if line.startswith("skipped:") and cut in line]
    assert "truncated" in skipped

    train = runner.invoke(
        cli,
        [
            "--device", "cpu", "train", "--dataset", str(voc), "--split", "trainval", "--proposals", props,
            "-o", str(tmp_path / "run"), "--scales", "96", "--max-size", "200", "--fc-dims", "16,16",
            "-R", "16", "--iters", "2", "--checkpoint-every", "2",
        ],
    )  # fmt: skip
    assert train.exit_code == 0, train.output
    assert "trained 2 iterations" in train.output  # the cut image was never read: it was left out
    lines = train.output.splitlines()

    # The data check's summary, as rcnn check prints it (without decoding, as train does not either).
    check = runner.invoke(cli, ["-q", "check", str(voc), "--split", "trainval", "--no-decode"])
    assert check.exit_code == 1
    summary = check.output.splitlines()[-4:]
    assert summary[:3] == ["  bad coordinates: 1", "  box outside image: 1", "  zero or negative area: 1"]
    assert summary[3].endswith(": 3 problem(s)")
    # The same lines, each with its first case (train does not list every problem as check does).
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{summary[0]} (first: {voc}"))
    assert [line.split(" (first: ")[0] for line in lines[start : start + 4]] == summary
    assert lines[start + 4].endswith(f"each one with its file: rcnn check {voc} --split trainval")
    assert not any(line.startswith(str(voc / "Annotations")) for line in lines)  # not the full list
    assert "(first: " in lines[start] and "000001.xml" in lines[start]

    # The image propose skipped: the same line, once.
    assert [line for line in lines if line.startswith("skipped:")] == [skipped]


def test_every_image_skipped_is_one_line(tmp_path: Path) -> None:
    from rcnn_cli.data import open_dataset
    from rcnn_cli.proposals.storage import ProposalStore

    voc, _ = _broken_voc(tmp_path)
    store = ProposalStore(tmp_path / "props")
    records = open_dataset(voc, "trainval").records
    store.prepare({"method": "test"}, [r.image_id for r in records])
    for record in records:
        store.record_skip(record.image_id, "", f"{record.path}: cannot decode image")
    result = CliRunner().invoke(
        cli,
        [
            "-q", "--device", "cpu", "train", "--dataset", str(voc), "--split", "trainval",
            "--proposals", str(store.folder), "-o", str(tmp_path / "run"), "--iters", "1",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output == f"Error: {store.folder}: rcnn propose skipped every image of {voc} (see above)\n"
