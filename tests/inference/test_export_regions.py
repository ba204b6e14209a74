"""R-CNN and SPPnet models exported as ONNX (run by onnxruntime) and TorchScript give the SVM scores
and ridge-regressed boxes that ``rcnn detect`` computes for them before NMS, on the bundled sample's
images at two proposal counts (and two image sizes for SPPnet; R-CNN reads the image at its own size
and warps each region: the warp is ONNX GridSample)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rcnn_cli.inference.export import METADATA_KEY, export_model
from rcnn_cli.models import load_checkpoint
from support.export import ROI_COUNTS, assert_matches, region_cases, region_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ("image", "proposals", "image_size", "im_scale")


def run(path: Path, fmt: str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["scores", "boxes"], {n: inputs[n] for n in NAMES})
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return [t.numpy() for t in module(*(torch.from_numpy(inputs[n]) for n in NAMES))]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("method", ["rcnn", "sppnet"])
def test_svm_scores_and_regressed_boxes_match(tmp_path: Path, method: str, fmt: str) -> None:
    if fmt == "onnx":
        for name in ("onnx", "onnxscript", "onnxruntime"):
            pytest.importorskip(name)
    checkpoint = region_checkpoint(tmp_path / "model.pt", method)
    result = export_model(checkpoint, tmp_path / f"model.{fmt}", fmt)
    model, _meta = load_checkpoint(checkpoint)
    counts, sizes, spread = set(), set(), []
    for case in region_cases(model):
        assert_matches(run(result.path, fmt, case.inputs), case)
        counts.add(len(case.inputs["proposals"]))
        sizes.add(case.inputs["image"].shape[2:])
        spread.append(case.scores)
    assert counts == set(ROI_COUNTS)
    assert len(sizes) == 2  # two images' sizes (R-CNN), or two scales (SPPnet)
    scores = np.concatenate(spread)
    assert (scores < 0.2).any() and (scores > 0.8).any()  # margins on both sides, not one saturated end


def test_the_description_says_what_the_scores_are_and_how_to_feed_the_image(tmp_path: Path) -> None:
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)
    import onnx

    result = export_model(region_checkpoint(tmp_path / "r.pt", "rcnn"), tmp_path / "r.onnx", "onnx")
    proto = onnx.load(str(result.path))
    assert "GridSample" in {node.op_type for node in proto.graph.node}
    described = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert described["network"] == "rcnn" and described["scores"] == "svm_sigmoid"
    assert described["preprocess"]["scale"] is None
    assert described["preprocess"]["window"] == {"size": 64, "context_padding": 5}


@pytest.mark.parametrize("method", ["rcnn", "sppnet"])
def test_one_and_no_proposals(tmp_path: Path, method: str) -> None:
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)
    checkpoint = region_checkpoint(tmp_path / "model.pt", method)
    result = export_model(checkpoint, tmp_path / "model.onnx", "onnx")
    model, _meta = load_checkpoint(checkpoint)
    case = next(region_cases(model))
    scores, boxes = run(result.path, "onnx", {**case.inputs, "proposals": case.inputs["proposals"][:1]})
    np.testing.assert_allclose(scores, case.scores[:1], atol=1e-5)
    np.testing.assert_allclose(boxes, case.boxes[:1], atol=1e-3)
    scores, boxes = run(result.path, "onnx", {**case.inputs, "proposals": np.zeros((0, 4), np.float32)})
    assert scores.shape == (0, 2) and boxes.shape == (0, 2, 4)
