"""Pictures a person can look at: the image with each detection's box, class name and score."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

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
    """A BGR copy of ``rgb`` (uint8 [H, W, 3]) with the boxes scoring >= ``min_score`` labelled, lowest
    score drawn first (a picture with every box above the 0.05 evaluation threshold is unreadable)."""
    canvas = np.ascontiguousarray(rgb[:, :, ::-1])
    height, width = canvas.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    font_scale = max(0.4, min(height, width) / 1000)
    order = np.argsort(dets.scores.numpy(), kind="stable")  # best boxes end on top
    order = order[dets.scores.numpy()[order] >= min_score]
    boxes, scores, labels = dets.boxes.numpy(), dets.scores.numpy(), dets.labels.numpy()
    for i in order:
        x1, y1, x2, y2 = (round(float(v)) for v in boxes[i])
        colour = PALETTE[(int(labels[i]) - 1) % len(PALETTE)]
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        text = f"{class_names[int(labels[i]) - 1]} {scores[i]:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        # Label above the box, or inside it when the box touches the top edge.
        top = y1 - th - base if y1 - th - base >= 0 else y1
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + base), colour, -1)
        cv2.putText(
            canvas,
            text,
            (x1 + 1, top + th),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return canvas


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
