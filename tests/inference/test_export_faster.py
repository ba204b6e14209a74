"""A Faster R-CNN exported as ONNX (run by onnxruntime) and as TorchScript gives, from the image alone,
the proposals, scores and boxes that ``rcnn detect``'s path computes before NMS with the training code's
proposal layer, on the bundled sample's images at two image sizes; a truncated-SVD model too; the stored
test-time proposal numbers are the graph's (a model capped at 7 proposals gives 7); the graph is
standard ONNX operators."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rcnn_cli.inference.export import METADATA_KEY, export_model
from rcnn_cli.models import load_checkpoint
from support.export import assert_faster_matches, faster_cases, faster_checkpoint, svd_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ("image", "image_size", "im_scale")


def run_onnx(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["proposals", "scores", "boxes"], {n: inputs[n] for n in NAMES})


def run_torchscript(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return [t.numpy() for t in module(*(torch.from_numpy(inputs[n]) for n in NAMES))]


def needs_onnx() -> None:
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return faster_checkpoint(tmp_path_factory.mktemp("faster") / "model.pt")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_proposals_scores_and_boxes_match_at_two_sizes(checkpoint: Path, fmt: str, tmp_path: Path) -> None:
    if fmt == "onnx":
        needs_onnx()
    result = export_model(checkpoint, tmp_path / f"model.{fmt}", fmt)
    assert "its RPN's proposals" in result.check
    model, _meta = load_checkpoint(checkpoint)
    run = run_onnx if fmt == "onnx" else run_torchscript
    sizes, counts = set(), set()
    for case in faster_cases(model):
        counts.add(assert_faster_matches(run(result.path, case.inputs), case))
        sizes.add(case.inputs["image"].shape[2:])
    assert len(sizes) == 2 and len(counts) > 1 and min(counts) > 10  # P is the data's, not the trace's


def test_a_truncated_svd_model_with_its_own_proposal_numbers(tmp_path: Path) -> None:
    """fc6/fc7 factorized as rcnn compress writes them, and a proposal layer capped at 7: the graph's."""
    needs_onnx()
    capped = faster_checkpoint(tmp_path / "capped.pt", pre_nms_top_n=60, post_nms_top_n=7, nms_iou=0.5)
    svd = svd_checkpoint(capped, tmp_path / "capped_svd.pt")
    result = export_model(svd, tmp_path / "capped_svd.onnx", "onnx")
    model, meta = load_checkpoint(svd)
    assert meta["svd_ranks"] == {"fc6": 8, "fc7": 4}
    for case in list(faster_cases(model))[:2]:
        assert assert_faster_matches(run_onnx(result.path, case.inputs), case) == 7


def test_the_graph_is_standard_operators_with_free_image_size(checkpoint: Path, tmp_path: Path) -> None:
    needs_onnx()
    import onnx

    result = export_model(checkpoint, tmp_path / "model.onnx", "onnx")
    proto = onnx.load(str(result.path))
    kinds = {node.op_type for node in proto.graph.node}
    assert {"NonMaxSuppression", "TopK", "MaxRoiPool"} <= kinds
    assert all(node.domain in ("", "ai.onnx") for node in proto.graph.node)
    inputs = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.input
    }
    assert inputs == {"image": [1, 3, "height", "width"], "image_size": [2], "im_scale": [1]}
    assert [v.name for v in proto.graph.output] == ["proposals", "scores", "boxes"]
    described = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert described["network"] == "faster_rcnn" and described["inputs"] == list(NAMES)
    assert described["proposal_layer"] == {
        "pre_nms_top_n": 6000,
        "post_nms_top_n": 300,
        "nms_iou": 0.7,
        "min_size": 16.0,
    }
