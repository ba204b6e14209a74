"""Our RoI poolings and NMS against the ONNX operators they are exported as
(rcnn_cli.inference.export.onnx_ops), run by onnxruntime in one-node graphs: the operators' own
semantics, no exporter in between."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rcnn_cli import ops

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

pytestmark = pytest.mark.usefixtures("one_thread")


def run_node(node, inputs: dict[str, np.ndarray], output: int = 1) -> np.ndarray:
    """One ONNX node (opset 18) on ``inputs`` by onnxruntime's CPU provider; ``output``: its
    TensorProto type (float by default)."""
    from onnx import TensorProto, helper

    def info(name: str, value: np.ndarray):
        kind = TensorProto.FLOAT if value.dtype == np.float32 else TensorProto.INT64
        return helper.make_tensor_value_info(name, kind, list(value.shape))

    graph = helper.make_graph(
        [node],
        "one_node",
        [info(n, v) for n, v in inputs.items()],
        [helper.make_tensor_value_info("y", output, None)],
    )
    # IR version 9 (that of opset 18), not the newest onnx writes: older onnxruntimes refuse newer IRs.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


def hard_rois(count: int = 300, images: int = 2, seed: int = 0) -> np.ndarray:
    """float32 [count, 5] RoIs that probe the quantization: corners on x.5 cells at scale 1/8 (the
    rounding of halves), boxes partly or wholly off the map, and malformed ones (x2 < x1)."""
    rng = np.random.default_rng(seed)
    corners = rng.uniform(-20, 160, (count, 4))
    corners[:60] = (rng.integers(-4, 20, (60, 4)) + 0.5) * 8
    boxes = np.concatenate(
        [np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:])], 1
    )
    boxes[-20:] = boxes[-20:, [2, 3, 0, 1]]
    batch = rng.integers(0, images, count)[:, None]
    return np.concatenate([batch, boxes], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    """float32 [2, 3, 13, 17], negative values too (so an all-negative bin must keep its maximum)."""
    return np.random.default_rng(1).normal(size=(2, 3, 13, 17)).astype(np.float32)


@pytest.mark.parametrize(("size", "scale"), [(7, 1 / 8), (6, 1 / 16), (1, 1 / 8), (3, 0.3)])
def test_max_roi_pool_is_our_roi_pool_exactly(features: np.ndarray, size: int, scale: float) -> None:
    from onnx import helper

    rois = hard_rois()
    ours = ops.roi_pool(torch.from_numpy(features), torch.from_numpy(rois), size, scale).numpy()
    node = helper.make_node(
        "MaxRoiPool", ["x", "rois"], ["y"], pooled_shape=[size, size], spatial_scale=scale
    )
    np.testing.assert_array_equal(run_node(node, {"x": features, "rois": rois}), ours)


def test_spp_levels_are_max_roi_pools_flattened_and_concatenated(features: np.ndarray) -> None:
    from onnx import helper

    rois, levels, scale = hard_rois(), (6, 3, 2, 1), 1 / 8
    ours = ops.spp_pool(torch.from_numpy(features), torch.from_numpy(rois), levels, scale).numpy()
    parts = []
    for level in levels:
        node = helper.make_node(
            "MaxRoiPool", ["x", "rois"], ["y"], pooled_shape=[level, level], spatial_scale=scale
        )
        parts.append(run_node(node, {"x": features, "rois": rois}).reshape(len(rois), -1))
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), ours)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [2, 0, -1])
@pytest.mark.parametrize(("size", "scale"), [(7, 1 / 8), (5, 0.3)])
def test_roi_align_is_onnx_roi_align(
    features: np.ndarray, aligned: bool, sampling_ratio: int, size: int, scale: float
) -> None:
    """aligned=True is half_pixel, False output_half_pixel; an adaptive ratio (<= 0) is ONNX's 0."""
    from onnx import helper

    rois = hard_rois()
    ours = ops.roi_align(
        torch.from_numpy(features), torch.from_numpy(rois), size, scale, sampling_ratio, aligned
    ).numpy()
    node = helper.make_node(
        "RoiAlign",
        ["x", "boxes", "batch"],
        ["y"],
        output_height=size,
        output_width=size,
        sampling_ratio=max(sampling_ratio, 0),
        spatial_scale=scale,
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel",
        mode="avg",
    )
    theirs = run_node(
        node, {"x": features, "boxes": rois[:, 1:].copy(), "batch": rois[:, 0].astype(np.int64)}
    )
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-6)


def onnx_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Kept indices by ONNX NonMaxSuppression as the translation calls it: one batch, one class, every
    box allowed, no score threshold."""
    from onnx import TensorProto, helper

    node = helper.make_node("NonMaxSuppression", ["b", "s", "m", "i"], ["y"])
    inputs = {
        "b": boxes[None].astype(np.float32),
        "s": scores[None, None].astype(np.float32),
        "m": np.asarray([len(boxes)], np.int64),
        "i": np.asarray([iou], np.float32),
    }
    return run_node(node, inputs, output=TensorProto.INT64)[:, 2]


@pytest.mark.parametrize("iou", [0.3, 0.5, 0.7])
def test_non_max_suppression_is_our_nms(iou: float) -> None:
    """Random overlapping boxes, scores with many exact ties (of which NMS visits the lower index first,
    in both), and -inf scores (the masked boxes of the exported proposal layer)."""
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 100, (400, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, (400, 2))], 1).astype(np.float32)
    scores = rng.integers(0, 12, 400).astype(np.float32)
    scores[rng.random(400) < 0.1] = -np.inf
    ours = ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
    np.testing.assert_array_equal(onnx_nms(boxes, scores, iou), ours)


def test_non_max_suppression_keeps_a_box_at_exactly_the_threshold() -> None:
    """IoU 2/4 = 0.5 exactly: at threshold 0.5 both keep it (suppression is IoU > threshold)."""
    boxes = np.asarray([[0, 0, 3, 1], [1, 0, 4, 1]], np.float32)
    scores = np.asarray([0.9, 0.8], np.float32)
    np.testing.assert_array_equal(onnx_nms(boxes, scores, 0.5), [0, 1])
    assert ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).tolist() == [0, 1]
    np.testing.assert_array_equal(onnx_nms(boxes, scores, 0.49), [0])
