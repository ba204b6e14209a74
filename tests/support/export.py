"""What the export tests share: sample images with proposals, and the checkpoint's own answer for them
(the torch path of ``rcnn detect`` up to NMS), to hold an exported model's answers against."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: Two shorter sides for the small test models (trained at 64, max 128): the bundled images
#: (640x480) become 85x64 and 128x96.
SCALES = (64, 96)
#: Two proposal counts.
ROI_COUNTS = (5, 60)

#: The stated tolerances of the tests: max |exported − torch| in scores (probabilities) and in boxes
#: (pixels of 640x480 images). Measured: ONNX ≤ ~1e-6 and ≤ ~1e-4 px, TorchScript 0 (same kernels).
SCORE_ATOL = 1e-5
BOX_ATOL = 1e-3


@dataclass(frozen=True)
class Case:
    """One image at one scale with some proposals, and the checkpoint's scores [R, K], boxes [R, K, 4]."""

    name: str
    inputs: dict[str, np.ndarray]
    scores: np.ndarray
    boxes: np.ndarray


def sample_rgb(count: int = 2) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` images of the bundled BCCD sample."""
    from rcnn_cli.data import sample_dataset_path
    from rcnn_cli.data.images import read_image

    paths = sorted((sample_dataset_path() / "JPEGImages").glob("*.jpg"))[:count]
    return [(path.stem, read_image(path)) for path in paths]


def proposals_for(rgb: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` boxes of varied sizes inside ``rgb``, in original pixels."""
    height, width = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    x1, y1 = rng.uniform(0, width - 20, count), rng.uniform(0, height - 20, count)
    w, h = rng.uniform(8, width / 2, count), rng.uniform(8, height / 2, count)
    return np.stack([x1, y1, np.minimum(x1 + w, width), np.minimum(y1 + h, height)], 1).astype(np.float32)


def torch_answer(model: torch.nn.Module, rgb: np.ndarray, boxes: np.ndarray, scale: int):
    """What ``rcnn detect`` computes before NMS: the Detector's inputs, the model, the head's test-time
    outputs. Returns (proposals as the Detector kept them, scores, boxes)."""
    from rcnn_cli.inference.detect import DetectConfig, Detector
    from rcnn_cli.models.heads import FastRCNNHead

    height, width = rgb.shape[:2]
    detector = Detector(model, ("a",) * model.num_classes, DetectConfig(scale=scale))
    kept = detector.clean_proposals(boxes, height, width)
    image, rois = detector.network_inputs(rgb, kept)
    with torch.no_grad():
        logits, deltas = model.head(model.features(image), rois)
    scores, decoded = FastRCNNHead.scores_and_boxes(logits, deltas, kept, height, width)
    return kept.numpy(), scores.numpy(), decoded.numpy()


def cases(model: torch.nn.Module) -> Iterator[Case]:
    """Two sample images × two scales × two proposal counts (different for each image)."""
    from rcnn_cli.inference.export import network_inputs

    for index, (name, rgb) in enumerate(sample_rgb()):
        for scale in SCALES:
            for count in ROI_COUNTS:
                kept, scores, boxes = torch_answer(model, rgb, proposals_for(rgb, count, index), scale)
                inputs = network_inputs(rgb, kept, model.config, scale)
                yield Case(f"{name}@{scale}x{count}", inputs, scores, boxes)


def assert_matches(got: list[np.ndarray], case: Case) -> tuple[float, float]:
    """``got`` = [scores, boxes] within the stated tolerances of ``case``; the max differences."""
    scores, boxes = got
    assert scores.shape == case.scores.shape and boxes.shape == case.boxes.shape, case.name
    score_error = float(np.abs(scores - case.scores).max())
    box_error = float(np.abs(boxes - case.boxes).max())
    assert score_error <= SCORE_ATOL and box_error <= BOX_ATOL, (case.name, score_error, box_error)
    return score_error, box_error


def svd_checkpoint(source: Path, output: Path) -> Path:
    """``source`` with fc6/fc7 factorized by truncated SVD, as ``rcnn compress`` writes it."""
    from rcnn_cli.inference.compress import compress_checkpoint

    compress_checkpoint(source, output, {"fc6": 8, "fc7": 4}, rois=10, repeats=1)
    return output
