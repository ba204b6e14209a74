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


#: The exported Fast R-CNN network's inputs, in its argument order.
INPUT_NAMES = ("image", "proposals", "image_size", "im_scale")


def needs_onnx() -> None:
    """Skip the calling test unless the ONNX exporter and runtime are installed."""
    import pytest

    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)


def run_exported(path: Path, fmt: str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """[scores, boxes] of the exported file at ``path`` (``fmt`` onnx: onnxruntime on the CPU;
    torchscript: the loaded module) for one case's ``inputs``."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["scores", "boxes"], {n: inputs[n] for n in INPUT_NAMES})
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return [t.numpy() for t in module(*(torch.from_numpy(inputs[n]) for n in INPUT_NAMES))]


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


def faster_checkpoint(path: Path, seed: int = 0, **proposal_layer: float) -> Path:
    """A real (untrained) small Faster R-CNN whose RPN objectness is spread out, so that its proposals
    are ranked by real differences; ``proposal_layer``: its stored test-time numbers changed."""
    from dataclasses import replace

    from rcnn_cli.models import default_config, save_checkpoint
    from rcnn_cli.models.faster_rcnn import build_model, with_rpn

    torch.manual_seed(seed)
    config = with_rpn(default_config("small", 2, fc6_dim=48, fc7_dim=32, scales=(64,), max_size=128))
    layer = replace(config.rpn.proposals, **proposal_layer)
    model = build_model(replace(config, rpn=replace(config.rpn, proposals=layer)))
    with torch.no_grad():
        model.head.cls_score.weight.normal_(0, 0.5)
        model.head.bbox_pred.weight.normal_(0, 0.01)
        model.rpn.head.objectness.weight.normal_(0, 0.5)
        model.rpn.head.bbox_deltas.weight.normal_(0, 0.05)
    save_checkpoint(path, model.eval(), {"class_names": ["a", "b"]})
    return path


def faster_answer(model: torch.nn.Module, rgb: np.ndarray, scale: int) -> tuple[np.ndarray, ...]:
    """What ``rcnn detect`` computes for a Faster R-CNN before NMS, from the training code's own proposal
    layer (``model.propose``): (proposals in original pixels, scores [P, K], boxes [P, K, 4])."""
    from rcnn_cli.models.heads import FastRCNNHead
    from rcnn_cli.models.preprocess import prepare_image

    config = model.config
    height, width = rgb.shape[:2]
    image, im_scale = prepare_image(rgb, scale, config.max_size, config.pixel_mean, config.pixel_std)
    with torch.no_grad():
        features = model.features(image[None])
        scaled = model.propose(features, [tuple(image.shape[-2:])])[0][0]
        rois = torch.cat([scaled.new_zeros(len(scaled), 1), scaled], dim=1)
        logits, deltas = model.head(features, rois)
    proposals = scaled / im_scale
    scores, boxes = FastRCNNHead.scores_and_boxes(logits, deltas, proposals, height, width)
    return proposals.numpy(), scores.numpy(), boxes.numpy()


def faster_cases(model: torch.nn.Module) -> Iterator[Case]:
    """Two sample images × two scales, with the Faster R-CNN's answer; ``Case.inputs`` are the proposing
    network's (no proposals), and the expected proposals ride in ``inputs["expected_proposals"]``."""
    from rcnn_cli.inference.export import network_inputs

    for name, rgb in sample_rgb():
        for scale in SCALES:
            proposals, scores, boxes = faster_answer(model, rgb, scale)
            inputs = network_inputs(rgb, np.zeros((0, 4), np.float32), model.config, scale)
            del inputs["proposals"]
            yield Case(f"{name}@{scale}", {**inputs, "expected_proposals": proposals}, scores, boxes)


def assert_faster_matches(got: list[np.ndarray], case: Case) -> int:
    """``got`` = [proposals, scores, boxes] within the stated tolerances of ``case`` on the proposals
    both have, ≥ 99% of the expected proposals found, none more than 3 places from its rank
    (rcnn_cli.inference.export.agreement: near-tied objectness may swap); the proposal count."""
    from rcnn_cli.inference.export.agreement import agreement

    names = ("proposals", "scores", "boxes")
    want = dict(zip(names, (case.inputs["expected_proposals"], case.scores, case.boxes), strict=True))
    close = agreement(dict(zip(names, got, strict=True)), want, BOX_ATOL)
    assert close.shared >= 0.99 and close.moved <= 3, (case.name, close)
    assert abs(len(got[0]) - len(want["proposals"])) <= 0.01 * len(want["proposals"]), case.name
    assert close.score_error <= SCORE_ATOL and close.box_error <= BOX_ATOL, (case.name, close)
    return len(got[0])


def region_checkpoint(path: Path, method: str, seed: int = 0) -> Path:
    """A small R-CNN or SPPnet model with random weights, SVMs and box regressors (scores spread over
    both sides of the margin, boxes moved by a few percent), as the region schedule writes it."""
    from rcnn_cli.models import default_config, save_checkpoint
    from rcnn_cli.models.faster_rcnn import build_model

    torch.manual_seed(seed)
    config = default_config("small", 2, fc6_dim=24, fc7_dim=16, scales=(64,), max_size=128, method=method)
    model = build_model(config)
    d5 = model.pooled_dim()
    model.set_svms(torch.randn(2, 16), torch.randn(2), feature_scale=2.0)
    model.set_box_regressors(torch.randn(2, d5, 4) * 1e-3, torch.randn(2, 4) * 0.05, feature_scale=1.5)
    save_checkpoint(path, model.eval(), {"class_names": ["a", "b"]})
    return path


def region_cases(model: torch.nn.Module) -> Iterator[Case]:
    """Two sample images × two proposal counts (× two scales for SPPnet; R-CNN reads the original
    image, so its second image is made smaller), with what
    :func:`rcnn_cli.inference.region_detect.detect_regions` computes before NMS."""
    import cv2

    from rcnn_cli.inference.detect import DetectConfig, Detector
    from rcnn_cli.inference.export import network_inputs
    from rcnn_cli.models.preprocess import normalize_image

    config = model.config
    scales = SCALES[:1] if config.method == "rcnn" else SCALES
    for index, (name, rgb) in enumerate(sample_rgb()):
        if config.method == "rcnn" and index == 1:  # the sample's images are all 640x480
            rgb = cv2.resize(rgb, (352, 264), interpolation=cv2.INTER_AREA)
        height, width = rgb.shape[:2]
        for scale in scales:
            detector = Detector(model, ("a",) * model.num_classes, DetectConfig(scale=scale))
            for count in ROI_COUNTS:
                kept = detector.clean_proposals(proposals_for(rgb, count, index), height, width)
                with torch.no_grad():
                    if config.method == "rcnn":
                        pool5 = model.warped_pool5(
                            normalize_image(rgb, config.pixel_mean, config.pixel_std), kept
                        )
                    else:
                        image, rois = detector.network_inputs(rgb, kept)
                        pool5 = model.head.pool_rois(model.features(image), rois)
                    scores = model.svm_scores(model.fc7(pool5)).sigmoid()
                    boxes = model.refined_boxes(pool5, kept, height, width)
                inputs = network_inputs(rgb, kept.numpy(), config, scale)
                yield Case(f"{name}@{scale}x{count}", inputs, scores.numpy(), boxes.numpy())
