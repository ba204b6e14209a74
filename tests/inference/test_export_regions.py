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
from support.export import (
    ROI_COUNTS,
    assert_matches,
    needs_onnx,
    region_cases,
    region_checkpoint,
    run_exported,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["rcnn", "sppnet"])
def exported_onnx(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """(checkpoint, its ONNX export) of each method, exported once for the tests below."""
    needs_onnx()
    folder = tmp_path_factory.mktemp(request.param)
    checkpoint = region_checkpoint(folder / "model.pt", request.param)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the one_thread fixture is per test
    try:
        return checkpoint, export_model(checkpoint, folder / "model.onnx", "onnx").path
    finally:
        torch.set_num_threads(before)


def check_cases(checkpoint: Path, exported: Path, fmt: str) -> None:
    model, _meta = load_checkpoint(checkpoint)
    counts, sizes, spread = set(), set(), []
    for case in region_cases(model):
        assert_matches(run_exported(exported, fmt, case.inputs), case)
        counts.add(len(case.inputs["proposals"]))
        sizes.add(case.inputs["image"].shape[2:])
        spread.append(case.scores)
    assert counts == set(ROI_COUNTS)
    assert len(sizes) == 2  # two images' sizes (R-CNN), or two scales (SPPnet)
    scores = np.concatenate(spread)
    assert (scores < 0.2).any() and (scores > 0.8).any()  # margins on both sides, not one saturated end


def test_onnx_svm_scores_and_regressed_boxes_match(exported_onnx: tuple[Path, Path]) -> None:
    check_cases(*exported_onnx, "onnx")


@pytest.mark.parametrize("method", ["rcnn", "sppnet"])
def test_torchscript_svm_scores_and_regressed_boxes_match(tmp_path: Path, method: str) -> None:
    checkpoint = region_checkpoint(tmp_path / "model.pt", method)
    check_cases(
        checkpoint, export_model(checkpoint, tmp_path / "model.ts", "torchscript").path, "torchscript"
    )


def test_the_description_says_what_the_scores_are_and_how_to_feed_the_image(
    exported_onnx: tuple[Path, Path],
) -> None:
    import onnx

    checkpoint, exported = exported_onnx
    method = load_checkpoint(checkpoint)[0].config.method
    proto = onnx.load(str(exported))
    described = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert described["network"] == method and described["scores"] == "svm_sigmoid"
    if method == "rcnn":
        assert "GridSample" in {node.op_type for node in proto.graph.node}
        assert described["preprocess"]["scale"] is None
        assert described["preprocess"]["window"] == {"size": 64, "context_padding": 5}
    else:
        assert described["preprocess"]["scale"] == 64 and described["preprocess"]["window"] is None


def test_one_and_no_proposals(exported_onnx: tuple[Path, Path]) -> None:
    checkpoint, exported = exported_onnx
    model, _meta = load_checkpoint(checkpoint)
    case = next(region_cases(model))
    scores, boxes = run_exported(exported, "onnx", {**case.inputs, "proposals": case.inputs["proposals"][:1]})
    np.testing.assert_allclose(scores, case.scores[:1], atol=1e-5)
    np.testing.assert_allclose(boxes, case.boxes[:1], atol=1e-3)
    scores, boxes = run_exported(exported, "onnx", {**case.inputs, "proposals": np.zeros((0, 4), np.float32)})
    assert scores.shape == (0, 2) and boxes.shape == (0, 2, 4)
