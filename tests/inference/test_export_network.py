"""The exported network in torch (no ONNX packages needed): it is the checkpoint's test-time path
before NMS, its clipping is ``clip_boxes``, and what it refuses or may not read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rcnn_cli.boxes import clip_boxes
from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.export import DetectorNetwork
from rcnn_cli.inference.export.agreement import agreement, matching_rows
from rcnn_cli.inference.export.network import as_tensors, check_exportable, clip_to_image
from rcnn_cli.inference.export.onnx_ops import check_no_argmax
from rcnn_cli.models import default_config, load_checkpoint
from rcnn_cli.models.faster_rcnn import with_rpn
from support.export import cases
from support.inference import small_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_network_is_the_detectors_path_before_nms(tmp_path: Path) -> None:
    model, _meta = load_checkpoint(small_checkpoint(tmp_path / "model.pt"))
    network = DetectorNetwork(model)
    for case in list(cases(model))[:4]:
        with torch.no_grad():
            scores, boxes = network(*as_tensors(case.inputs))
        np.testing.assert_array_equal(scores.numpy(), case.scores)
        np.testing.assert_array_equal(boxes.numpy(), case.boxes)


def test_clip_to_image_is_clip_boxes() -> None:
    boxes = torch.tensor(
        [[[-5.0, 3.0, 70.5, 49.0], [1.0, -2.0, 10.0, 80.0]], [[0, 0, 64, 48], [64, 48, 99, 99]]]
    )
    np.testing.assert_array_equal(
        clip_to_image(boxes, torch.tensor([48, 64])),
        clip_boxes(boxes.reshape(-1, 4), 48, 64).reshape(2, 2, 4),
    )


def test_every_method_is_exportable_but_a_multi_scale_sppnet() -> None:
    for config in (
        default_config("small", 2),
        with_rpn(default_config("small", 2)),
        default_config("small", 2, method="rcnn"),
        default_config("small", 2, method="sppnet"),
    ):
        check_exportable(config, "m.pt")
    multi = default_config("small", 2, method="sppnet", scales=(48, 64))
    with pytest.raises(
        RcnnError, match=r"m\.pt is a multi-scale SPPnet model \(--scales 48,64\).*single-scale"
    ):
        check_exportable(multi, "m.pt")


def test_agreement_finds_swapped_and_missing_proposals() -> None:
    """Faster R-CNN outputs are compared proposal by proposal: here the export swapped rows 1 and 2
    (near-tied objectness), lost row 3 and has one of its own; the scores of the shared rows differ by
    1e-6 (swapped with them), the boxes by 2e-3 px."""
    want_p = np.asarray([[0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 9, 9], [30, 30, 40, 40]], np.float32)
    got_p = want_p[[0, 2, 1]]
    got_p = np.concatenate([got_p, [[50, 50, 60, 60]]]).astype(np.float32)
    want_s = np.asarray([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6]], np.float32)
    got_s = np.concatenate([want_s[[0, 2, 1]] + 1e-6, [[0.5, 0.5]]]).astype(np.float32)
    want_b = np.repeat(want_p[:, None], 2, axis=1)
    got_b = np.repeat(got_p[:, None], 2, axis=1) + 2e-3
    i, j = matching_rows(got_p, want_p, 1e-2)
    assert i.tolist() == [0, 1, 2] and j.tolist() == [0, 2, 1]
    close = agreement(
        {"proposals": got_p, "scores": got_s, "boxes": got_b},
        {"proposals": want_p, "scores": want_s, "boxes": want_b},
        1e-2,
    )
    assert close.shared == 0.75 and close.moved == 1
    assert close.score_error == pytest.approx(1e-6, abs=1e-7) and close.box_error == pytest.approx(
        2e-3, abs=1e-4
    )
    fast = agreement({"scores": want_s, "boxes": want_b}, {"scores": want_s[:3], "boxes": want_b[:3]}, 1e-2)
    assert fast.score_error == float("inf")  # Fast R-CNN rows are the inputs': compared row for row


class _ReadsArgmax(torch.nn.Module):
    def forward(self, x: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        from rcnn_cli.ops import roi_pool_with_argmax

        pooled, argmax = roi_pool_with_argmax(x, rois, 2, 1.0)
        return pooled + argmax


def test_a_graph_that_reads_the_argmax_is_not_translated(tmp_path: Path) -> None:
    x, rois = torch.rand(1, 2, 8, 8), torch.tensor([[0, 0, 0, 7, 7], [0, 1, 1, 5, 5.0]])
    with pytest.raises(AssertionError, match="argmax"):
        check_no_argmax(torch.export.export(_ReadsArgmax(), (x, rois)))
    model, _meta = load_checkpoint(small_checkpoint(tmp_path / "model.pt"))
    (case,) = list(cases(model))[:1]
    assert check_no_argmax(torch.export.export(DetectorNetwork(model), as_tensors(case.inputs))) == 1
