"""The report's chart labels do not cover each other: close points, narrow training stages."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")

from rcnn_cli.pictures.figure import new_figure
from rcnn_cli.report.charts import _label_points, _label_segments


def _row(name: str, ms: float, voc07: float) -> dict[str, Any]:
    return {"name": name, "test_ms_per_image": {"total": ms}, "voc07_map": voc07}


def test_names_of_close_points_do_not_overlap() -> None:
    # SPPnet and Fast R-CNN of the BCCD report: 1059 ms / 81.4 and 1018 ms / 82.2.
    rows = [_row("SPPnet", 1059, 81.4), _row("Fast R-CNN", 1018, 82.2), _row("R-CNN", 4375, 75.9)]
    figure = new_figure(7.5, 4.8)
    axes = figure.add_subplot()
    axes.set_xscale("log")
    axes.set_xlim(500, 13000)
    axes.set_ylim(65, 92)
    _label_points(figure, axes, rows)
    renderer = figure.canvas.get_renderer()
    boxes = {t.get_text(): t.get_window_extent(renderer) for t in axes.texts}
    assert set(boxes) == {"SPPnet", "Fast R-CNN", "R-CNN"}
    assert not boxes["SPPnet"].overlaps(boxes["Fast R-CNN"])
    # The upper point's name is the upper one.
    assert boxes["Fast R-CNN"].y0 > boxes["SPPnet"].y0


def test_stage_names_that_do_not_fit_go_under_the_bar() -> None:
    import numpy as np

    figure = new_figure(11, 3)
    axes = figure.add_subplot()
    y = np.arange(1)
    axes.barh(y, [30.0])
    axes.set_xlim(0, 40)
    axes.invert_yaxis()
    segments = [
        (np.array([0.0]), np.array([28.0]), ["1-finetune"]),
        (np.array([28.0]), np.array([0.4]), ["3-svm"]),
    ]
    _label_segments(figure, axes, y, segments)
    texts = [t.get_text() for t in axes.texts]
    assert "finetune" in texts
    assert "svm" not in texts
    assert any(t.startswith("also: svm 0.4") for t in texts)
