"""Pictures a person can look at: the image with each detection's box, class name and score."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from rcnn_cli.inference.label_layout import place_labels
from rcnn_cli.inference.postprocess import ImageDetections

# Distinct, readable colours (BGR), one per class, cycling for more than ten classes.
PALETTE = (
    (48, 48, 230),
    (60, 180, 75),
    (230, 130, 0),
    (0, 200, 230),
    (200, 60, 200),
    (180, 180, 0),
    (0, 130, 255),
    (128, 0, 128),
    (80, 80, 80),
    (0, 100, 0),
)


def render_detections(
    rgb: np.ndarray, dets: ImageDetections, class_names: Sequence[str], min_score: float = 0.0
) -> np.ndarray:
    """A BGR copy of ``rgb`` (uint8 [H, W, 3]) with the boxes scoring >= ``min_score`` labelled (a
    picture with every box above the 0.05 evaluation threshold is unreadable).

    Readable when crowded: every box first, the labels over them (no outline runs through a label);
    each label inside the picture and, where there is room, clear of the others, the best boxes'
    labels placed first (:mod:`.label_layout`). Outlines are inset into the picture, so a box along
    the image's edge shows its whole line. The best boxes are drawn last, on top.
    """
    canvas = np.ascontiguousarray(rgb[:, :, ::-1])
    height, width = canvas.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    font_scale = max(0.4, min(height, width) / 1000)
    scores = dets.scores.numpy()
    best_first = np.argsort(-scores, kind="stable")
    best_first = best_first[scores[best_first] >= min_score]
    boxes, labels = dets.boxes.numpy(), dets.labels.numpy()
    outlines = [_outline(boxes[i], thickness, width, height) for i in best_first]
    colours = [PALETTE[(int(labels[i]) - 1) % len(PALETTE)] for i in best_first]
    texts = [f"{class_names[int(labels[i]) - 1]} {scores[i]:.2f}" for i in best_first]
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1) for text in texts]
    places = place_labels(outlines, [(tw + 2, th + base) for (tw, th), base in sizes], width, height)
    for (x1, y1, x2, y2), colour in reversed(list(zip(outlines, colours, strict=True))):
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), colour, thickness)
    for place, colour, text, ((_, th), _) in reversed(list(zip(places, colours, texts, sizes, strict=True))):
        x1, y1, x2, y2 = place
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
        cv2.putText(
            canvas,
            text,
            (x1 + 1, y1 + th),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return canvas


def _outline(box: np.ndarray, thickness: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel rectangle (x2, y2 exclusive) to draw ``box`` (continuous x1 y1 x2 y2) with: its line,
    ``thickness`` wide and centred on the rectangle, stays inside the picture, so a box that touches
    the edge keeps its whole line instead of half of it (or none: x2 = W is past the last column)."""
    half = thickness // 2
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, y1 = min(max(x1, half), width - half - 1), min(max(y1, half), height - half - 1)
    x2, y2 = min(max(x2, x1 + 1), width - half), min(max(y2, y1 + 1), height - half)  # >= 1 pixel wide
    return x1, y1, x2, y2


def draw_detections(
    rgb: np.ndarray, dets: ImageDetections, class_names: Sequence[str], path: Path, min_score: float = 0.0
) -> None:
    """Write the labelled picture to ``path`` (JPEG or PNG by suffix), atomically."""
    from rcnn_cli.artifacts import atomic_write_bytes

    canvas = render_detections(rgb, dets, class_names, min_score)
    ok, encoded = cv2.imencode(path.suffix or ".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError(f"cv2 could not encode {path.name}")
    atomic_write_bytes(path, encoded.tobytes())
