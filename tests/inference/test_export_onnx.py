"""An exported ONNX model, run by onnxruntime, gives the checkpoint's scores and boxes (the torch path of
``rcnn detect`` before NMS) on the bundled sample's images at two image sizes and two proposal counts,
within :data:`support.export.SCORE_ATOL` / :data:`support.export.BOX_ATOL`; so does a model with
truncated-SVD layers, and SPP / RoIAlign models (the other two translations)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from rcnn_cli.inference.export import METADATA_KEY, export_model
from rcnn_cli.models import load_checkpoint
from support.export import ROI_COUNTS, assert_matches, cases, run_exported, svd_checkpoint
from support.inference import CLASS_NAMES, small_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    model = small_checkpoint(folder / "model.pt")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the one_thread fixture is per test
    try:
        result = export_model(model, folder / "model.onnx", "onnx")
    finally:
        torch.set_num_threads(before)
    assert result.score_error <= 1e-4 and result.box_error <= 1e-2
    return model, result.path


def test_scores_and_boxes_match_at_two_sizes_and_two_roi_counts(exported: tuple[Path, Path]) -> None:
    checkpoint, onnx_path = exported
    model, _meta = load_checkpoint(checkpoint)
    seen = set()
    for case in cases(model):
        assert_matches(run_exported(onnx_path, "onnx", case.inputs), case)
        seen.add((case.inputs["image"].shape[2:], len(case.inputs["proposals"])))
    assert len({size for size, _ in seen}) == 2 and {count for _, count in seen} == set(ROI_COUNTS)


def test_the_graph_uses_standard_operators_and_dynamic_axes(exported: tuple[Path, Path]) -> None:
    import onnx

    proto = onnx.load(str(exported[1]))
    kinds = {node.op_type for node in proto.graph.node}
    assert "MaxRoiPool" in kinds and all(node.domain in ("", "ai.onnx") for node in proto.graph.node)

    def dims(values) -> dict[str, list]:
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    assert dims(proto.graph.input) == {
        "image": [1, 3, "height", "width"],
        "proposals": ["rois", 4],
        "image_size": [2],
        "im_scale": [1],
    }
    assert dims(proto.graph.output) == {"scores": ["rois", 2], "boxes": ["rois", 2, 4]}
    described = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert described["class_names"] == list(CLASS_NAMES)
    assert described["preprocess"]["scale"] == 64 and described["preprocess"]["max_size"] == 128


def test_one_and_no_proposals(exported: tuple[Path, Path]) -> None:
    checkpoint, onnx_path = exported
    model, _meta = load_checkpoint(checkpoint)
    case = next(cases(model))
    one = {**case.inputs, "proposals": case.inputs["proposals"][:1]}
    scores, boxes = run_exported(onnx_path, "onnx", one)
    np.testing.assert_allclose(scores, case.scores[:1], atol=1e-5)
    np.testing.assert_allclose(boxes, case.boxes[:1], atol=1e-3)
    none = {**case.inputs, "proposals": np.zeros((0, 4), np.float32)}
    scores, boxes = run_exported(onnx_path, "onnx", none)
    assert scores.shape == (0, 2) and boxes.shape == (0, 2, 4)


def test_a_truncated_svd_model_exports_and_matches(tmp_path: Path) -> None:
    svd = svd_checkpoint(small_checkpoint(tmp_path / "model.pt"), tmp_path / "model_svd.pt")
    model, meta = load_checkpoint(svd)
    assert meta["svd_ranks"] == {"fc6": 8, "fc7": 4} and isinstance(model.head.fc6, torch.nn.Sequential)
    result = export_model(svd, tmp_path / "model_svd.onnx", "onnx")
    for case in list(cases(model))[:4]:  # both sizes, both counts
        assert_matches(run_exported(result.path, "onnx", case.inputs), case)


@pytest.mark.parametrize("pool", ["spp", "align"])
def test_spp_and_roi_align_models_export_and_match(tmp_path: Path, pool: str) -> None:
    """The SPP pyramid becomes MaxRoiPools + Concat; RoIAlign (aligned) RoiAlign with half_pixel."""
    import onnx

    from rcnn_cli.models import FastRCNN, default_config, save_checkpoint

    torch.manual_seed(0)
    config = default_config("small", 2, fc6_dim=16, fc7_dim=8, scales=(64,), max_size=128, pool=pool)
    net = FastRCNN(config).eval()
    with torch.no_grad():
        net.head.cls_score.weight.normal_(0, 0.5)
        net.head.bbox_pred.weight.normal_(0, 0.01)
    save_checkpoint(tmp_path / "model.pt", net, {"class_names": list(CLASS_NAMES)})
    result = export_model(tmp_path / "model.pt", tmp_path / "model.onnx", "onnx")
    kinds = [node.op_type for node in onnx.load(str(result.path)).graph.node]
    if pool == "spp":
        assert kinds.count("MaxRoiPool") == len(config.levels)
    else:
        assert "RoiAlign" in kinds
    model, _meta = load_checkpoint(tmp_path / "model.pt")
    for case in list(cases(model))[:4]:
        assert_matches(run_exported(result.path, "onnx", case.inputs), case)
