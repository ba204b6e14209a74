"""Post-processing on a hand-built case: thresholds, per-class NMS, top-k, decoding, clipping."""

from __future__ import annotations

import math

import pytest
import torch

from rcnn_cli.inference.postprocess import PostprocessConfig, postprocess_detections

P0 = [0.0, 0.0, 10.0, 10.0]
P1 = [1.0, 1.0, 11.0, 11.0]  # IoU with P0 = 81 / 119 = 0.68 > 0.3
P2 = [20.0, 20.0, 30.0, 30.0]
PROPOSALS = torch.tensor([P0, P1, P2])
# Softmax probabilities per RoI: (background, class 1, class 2)
PROBS = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.90, 0.04, 0.06]])
LOGITS = PROBS.log()
ZERO_DELTAS = torch.zeros(3, 12)


def _run(config: PostprocessConfig = PostprocessConfig(), deltas: torch.Tensor = ZERO_DELTAS, h=40, w=40):
    return postprocess_detections(LOGITS, deltas, PROPOSALS, h, w, config)


def test_per_class_nms_and_score_threshold() -> None:
    dets = _run()
    # class 1: P0 (.8) suppresses P1 (.6); P2 (.04) is under .05.
    # class 2: P1 (.3) suppresses P0 (.1); P2 (.06) survives. Classes never suppress each other.
    assert dets.labels.tolist() == [1, 2, 2]
    torch.testing.assert_close(dets.scores, torch.tensor([0.8, 0.3, 0.06]))
    torch.testing.assert_close(dets.boxes, torch.tensor([P0, P1, P2]))
    assert dets.labels.dtype == torch.int64


def test_options_change_the_result_as_documented() -> None:
    assert len(_run(PostprocessConfig(max_detections=2))) == 2  # the two best
    assert _run(PostprocessConfig(score_threshold=0.2)).scores.tolist() == pytest.approx([0.8, 0.3])
    # NMS at 0.7: IoU .68 no longer suppresses, all five pairs above .05 stay.
    loose = _run(PostprocessConfig(nms_threshold=0.7))
    assert loose.scores.tolist() == pytest.approx([0.8, 0.6, 0.3, 0.1, 0.06])
    assert _run(PostprocessConfig(score_threshold=0.99)).boxes.shape == (0, 4)


def test_class_specific_deltas_are_decoded_and_clipped() -> None:
    deltas = torch.zeros(3, 12)
    deltas[0, 4:8] = torch.tensor([0.1, 0.0, math.log(2.0), 0.0])  # class 1 of P0: move .1 w, double w
    deltas[2, 8:12] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # class 2 of P2: one width right, past x = 35
    dets = _run(deltas=deltas, h=40, w=35)
    by_label = {
        (int(lab), round(float(s), 2)): b.tolist()
        for b, s, lab in zip(dets.boxes, dets.scores, dets.labels, strict=True)
    }
    # centre 5 + 1 = 6, width 20 -> [-4, 16], clipped to [0, 16]
    assert by_label[(1, 0.8)] == pytest.approx([0.0, 0.0, 16.0, 10.0])
    # centre 25 + 10 = 35 -> [30, 40] clipped to the 35-pixel width
    assert by_label[(2, 0.06)] == pytest.approx([30.0, 20.0, 35.0, 30.0])


def test_boxes_clipped_to_nothing_are_dropped() -> None:
    # P2 lies wholly right of a 15-pixel-wide image: its class-2 box clips to zero width.
    dets = _run(h=40, w=15)
    assert (dets.boxes[:, 2] > dets.boxes[:, 0]).all()
    assert 0.06 not in [round(s, 2) for s in dets.scores.tolist()]
