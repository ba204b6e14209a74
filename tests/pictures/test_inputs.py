"""Which image a picture is of and where it goes; every mistake is one RcnnError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcnn_cli.errors import DataError, RcnnError
from rcnn_cli.pictures.inputs import output_path, pick_image
from support.pictures import sample_path


def test_an_image_file_or_a_dataset_image() -> None:
    image = sample_path() / "JPEGImages" / "BloodImage_00000.jpg"
    alone = pick_image(str(image), None)
    assert alone.record.image_id == "BloodImage_00000" and not alone.has_ground_truth
    in_dataset = pick_image(None, str(sample_path()), "test", "BloodImage_00007")
    assert in_dataset.record.num_boxes > 0 and in_dataset.has_ground_truth
    first = in_dataset.dataset.records[0].image_id
    assert pick_image(None, str(sample_path()), "test").record.image_id == first


@pytest.mark.parametrize(
    ("image", "dataset", "image_id", "message"),
    [
        ("missing.jpg", None, None, "missing.jpg: no such dataset, folder or image"),
        (None, "missing_voc", None, "missing_voc: no such dataset, folder or image"),
        (None, "SAMPLE", "BloodImage_99999", "no image with id 'BloodImage_99999'"),
        ("SAMPLE", None, None, "is a folder; give one image file"),
        (None, None, None, "give an IMAGE file or --dataset"),
        ("x.jpg", "SAMPLE", None, "give an IMAGE file or --dataset"),
    ],
)
def test_bad_inputs_are_one_line(
    tmp_path: Path, image: str | None, dataset: str | None, image_id: str | None, message: str
) -> None:
    def where(name: str | None) -> str | None:
        if name is None:
            return None
        return str(sample_path()) if name == "SAMPLE" else str(tmp_path / name)

    with pytest.raises(RcnnError) as caught:
        pick_image(where(image), where(dataset), None, image_id)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg"):
        pick_image(str(broken), None)


def test_output_paths(tmp_path: Path) -> None:
    record = pick_image(None, str(sample_path()), "test").record
    assert output_path(tmp_path / "a.png", record, "rois") == tmp_path / "a.png"
    assert output_path(tmp_path / "new", record, "rois") == tmp_path / "new" / f"{record.image_id}_rois.png"
    assert (tmp_path / "new").is_dir()
    assert output_path(None, record, "anchors") == Path(f"{record.image_id}_anchors.png")
    with pytest.raises(RcnnError, match="does not exist"):
        output_path(tmp_path / "missing" / "a.png", record, "rois")
    with pytest.raises(RcnnError, match=r"ending in \.png"):
        output_path(tmp_path / "a.jpg", record, "rois")
    (tmp_path / "file").write_text("")
    with pytest.raises(RcnnError, match="not a folder"):
        output_path(tmp_path / "file", record, "rois")
