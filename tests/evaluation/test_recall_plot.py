"""The recall-against-IoU figure: a real PNG, written atomically, only where its folder exists."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rcnn_cli.errors import RcnnError
from rcnn_cli.evaluation.recall_iou import IOU_THRESHOLDS
from rcnn_cli.evaluation.recall_plot import PlotLine, check_plot_path, write_recall_plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _lines() -> list[PlotLine]:
    falling = [1.0, 0.98, 0.95, 0.9, 0.8, 0.65, 0.45, 0.25, 0.1, 0.02]
    return [
        PlotLine("ss", 300, falling),
        PlotLine("ss", 2000, [min(1.0, r + 0.05) for r in falling]),
        PlotLine("rpn", 300, [r * 0.9 for r in falling]),
    ]


def test_writes_a_png_of_a_sensible_size(tmp_path: Path) -> None:
    path = write_recall_plot(tmp_path / "recall.png", IOU_THRESHOLDS, _lines(), "Recall vs IoU: voc (test)")
    assert path == tmp_path / "recall.png"
    width, height = png_size(path)
    assert 600 <= width <= 2000 and 400 <= height <= 1600
    assert path.stat().st_size > 10_000  # axes, text, three lines: not an empty canvas
    from PIL import Image

    with Image.open(path) as image:
        image.verify()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recall.png"]  # no temporary left


def test_legend_names_source_and_budget() -> None:
    assert [line.legend for line in _lines()] == ["ss (300)", "ss (2000)", "rpn (300)"]
    assert PlotLine("eb", None, []).legend == "eb (all)"


def test_a_missing_folder_or_another_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RcnnError, match=r"the folder .*nowhere does not exist"):
        write_recall_plot(tmp_path / "nowhere" / "r.png", IOU_THRESHOLDS, _lines(), "t")
    assert not (tmp_path / "nowhere").exists()  # refused, not created
    (tmp_path / "file").write_text("")
    with pytest.raises(RcnnError, match="is not a folder"):
        check_plot_path(tmp_path / "file" / "r.png")
    with pytest.raises(RcnnError, match=r"ending in \.png"):
        check_plot_path(tmp_path / "r.svg")
    with pytest.raises(RcnnError, match="no recall curves"):
        write_recall_plot(tmp_path / "r.png", IOU_THRESHOLDS, [], "t")
    assert check_plot_path(tmp_path / "R.PNG") == tmp_path / "R.PNG"


def test_a_write_that_fails_half_way_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    from matplotlib.figure import Figure

    def half_a_png(self, fname, **kwargs) -> None:
        Path(fname).write_bytes(PNG_SIGNATURE)
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", half_a_png)
    path = tmp_path / "recall.png"
    path.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        write_recall_plot(path, IOU_THRESHOLDS, _lines(), "t")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recall.png"]
