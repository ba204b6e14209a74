"""Detection pictures of crowded images: labels inside the picture and clear of each other, outlines
inside the picture (a box along the edge keeps its whole line), no outline drawn through a label."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from rcnn_cli.inference.drawing import PALETTE, render_detections
from rcnn_cli.inference.label_layout import candidates, overlap, place_labels
from rcnn_cli.inference.postprocess import ImageDetections

W, H = 240, 160
LABEL = (44, 12)


def crowded_boxes() -> list[tuple[int, int, int, int]]:
    """Boxes of a crowded picture: columns of boxes 8 pixels apart (labels above each would cover one
    another: 10 overlaps), boxes in every corner, at the top edge and too narrow for their label at the
    right edge, and one box that is the whole picture."""
    grid = [(x, y, x + 40, y + 24) for x in range(20, 200, 60) for y in range(30, 62, 8)]
    corners = [(0, 0, 50, 30), (W - 50, 0, W, 30), (0, H - 30, 50, H), (W - 50, H - 30, W, H)]
    return [(0, 0, W, H), *corners, (100, 0, 140, 20), (W - 20, 80, W, 100), *grid]


def test_labels_stay_inside_and_do_not_overlap_on_a_crowded_picture() -> None:
    boxes = crowded_boxes()
    places = place_labels(boxes, [LABEL] * len(boxes), W, H)
    assert len(places) == len(boxes)
    for x1, y1, x2, y2 in places:
        assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
        assert (x2 - x1, y2 - y1) == LABEL
    for a, b in itertools.combinations(places, 2):
        assert overlap(a, b) == 0, (a, b)


def test_the_first_choice_is_above_the_box_then_below_then_inside() -> None:
    assert place_labels([(50, 50, 100, 80)], [LABEL], W, H) == [(50, 38, 94, 50)]  # above, left-aligned
    _, second = place_labels([(50, 50, 100, 80), (50, 44, 100, 90)], [LABEL] * 2, W, H)
    assert second == (50, 90, 94, 102)  # above would overlap the first label: below
    top_edge = candidates((10, 0, 60, 40), LABEL, W, H)
    assert top_edge[0] == (10, 0, 54, 12)  # no room above: shifted in, inside the box's top


def test_labels_of_boxes_at_the_right_and_bottom_edges_are_shifted_in() -> None:
    (place,) = place_labels([(W - 10, H - 8, W, H)], [LABEL], W, H)
    assert place == (W - LABEL[0], H - 8 - LABEL[1], W, H - 8)


def test_too_crowded_for_room_the_least_overlap_is_taken_and_stays_inside() -> None:
    boxes = [(0, 0, 30, 20)] * 6  # one spot, six labels: they must overlap
    places = place_labels(boxes, [LABEL] * 6, 60, 24)
    assert all(min(x1, y1) >= 0 and x2 <= 60 and y2 <= 24 for x1, y1, x2, y2 in places)
    assert places[1] != places[0]  # the second takes the spot overlapping the first least


def _picture(boxes: list[tuple[float, float, float, float]], labels: list[int]) -> np.ndarray:
    rgb = np.full((H, W, 3), 255, np.uint8)
    dets = ImageDetections(
        torch.tensor(boxes, dtype=torch.float32), torch.ones(len(boxes)), torch.tensor(labels)
    )
    return render_detections(rgb, dets, ("cell", "platelet"))


def test_a_box_spanning_the_picture_shows_its_line_on_every_edge() -> None:
    canvas = _picture([(0.0, 0.0, float(W), float(H))], [2])
    green = np.array(PALETTE[1], np.uint8)
    middle_x, middle_y = W // 2, H // 2 + 20  # clear of the label
    assert (canvas[middle_y, 0] == green).all() and (canvas[middle_y, W - 1] == green).all()
    assert (canvas[H - 1, middle_x] == green).all() and (canvas[0, middle_x + 60] == green).all()


def test_no_outline_runs_through_a_label() -> None:
    """The second box's bottom line (y = 57) runs where the first box's label goes (above it, from
    y = 60 up by the label's height, 13 pixels); labels are drawn after every box."""
    canvas = _picture([(20.0, 60.0, 120.0, 120.0), (30.0, 40.0, 200.0, 58.0)], [1, 2])
    red, green = np.array(PALETTE[0], np.uint8), np.array(PALETTE[1], np.uint8)
    label_row = canvas[50:59, 22:50]  # inside the first box's label: red ground, white text
    assert not (label_row == green).all(axis=-1).any()
    assert (label_row == red).all(axis=-1).any()


def test_outlines_lie_inside_the_picture_even_for_a_box_of_no_size_at_its_corner() -> None:
    from rcnn_cli.inference.drawing import _outline

    for thickness in (1, 2, 3):
        half = thickness // 2
        for box in ((W, H, W, H), (0, 0, W, H), (-5, -5, 3, 3)):
            x1, y1, x2, y2 = _outline(np.array(box, np.float32), thickness, W, H)
            assert half <= x1 < x2 <= W - half and half <= y1 < y2 <= H - half, (thickness, box)
