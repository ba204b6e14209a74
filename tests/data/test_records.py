"""ImageRecord normalises dtypes and refuses boxes that would turn into NaN in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rcnn_cli.data import ImageRecord


def test_dtypes_and_shapes_are_normalised() -> None:
    record = ImageRecord("a", "x.jpg", 10, 10, [[0, 0, 5, 5]], [1], [0])
    assert record.boxes.dtype == np.float32 and record.boxes.shape == (1, 4)
    assert record.labels.dtype == np.int64 and record.difficult.dtype == bool
    assert isinstance(record.path, Path) and record.num_boxes == 1
    empty = ImageRecord("b", "y.jpg", 10, 10)
    assert empty.boxes.shape == (0, 4) and empty.labels.shape == (0,) and empty.difficult.shape == (0,)


@pytest.mark.parametrize(
    "box", [[0, 0, 0, 5], [3, 0, 2, 5], [0, 0, float("nan"), 5], [0, 0, float("inf"), 5]]
)
def test_degenerate_or_non_finite_boxes_are_refused(box) -> None:
    with pytest.raises(ValueError, match="x2 > x1"):
        ImageRecord("a", "x.jpg", 10, 10, [box], [1], [False])


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        ImageRecord("a", "x.jpg", 10, 10, [[0, 0, 5, 5]], [1, 2], [False])
