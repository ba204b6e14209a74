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


def test_box_voting_is_the_score_weighted_mean_of_same_class_overlaps():
    from rcnn_cli.inference.postprocess import PostprocessConfig, select_detections

    # R = 3 RoIs, K = 2 classes. RoI 1 overlaps RoI 0 at IoU 80/120 = 0.667 and is suppressed by NMS
    # 0.3 in class 1; RoI 2 is class 2's only box, on top of RoI 0: it must not vote for class 1.
    boxes = torch.tensor(
        [
            [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]],
            [[2.0, 0.0, 12.0, 10.0], [2.0, 0.0, 12.0, 10.0]],
            [[50.0, 50.0, 60.0, 60.0], [1.0, 1.0, 9.0, 9.0]],
        ]
    )
    scores = torch.tensor([[0.9, 0.01], [0.6, 0.01], [0.01, 0.8]])
    plain = select_detections(scores, boxes, PostprocessConfig())
    voted = select_detections(scores, boxes, PostprocessConfig(box_voting=0.5))
    assert plain.labels.tolist() == voted.labels.tolist() == [1, 2]
    torch.testing.assert_close(voted.scores, plain.scores)  # voting moves boxes, never scores
    torch.testing.assert_close(plain.boxes[0], torch.tensor([0.0, 0.0, 10.0, 10.0]))
    # x1 = (0.9 * 0 + 0.6 * 2) / 1.5 = 0.8, x2 = (0.9 * 10 + 0.6 * 12) / 1.5 = 10.8
    torch.testing.assert_close(voted.boxes[0], torch.tensor([0.8, 0.0, 10.8, 10.0]))
    torch.testing.assert_close(voted.boxes[1], torch.tensor([1.0, 1.0, 9.0, 9.0]))  # alone: unchanged
    # Above the pair's IoU, the box votes alone.
    strict = select_detections(scores, boxes, PostprocessConfig(box_voting=0.7))
    torch.testing.assert_close(strict.boxes, plain.boxes)


def test_box_voting_out_of_range_is_refused():
    from rcnn_cli.errors import RcnnError
    from rcnn_cli.inference.postprocess import PostprocessConfig

    with pytest.raises(RcnnError, match="--box-voting"):
        PostprocessConfig(box_voting=1.5)


def test_iterative_localization_runs_the_head_again_on_its_refined_boxes():
    from rcnn_cli.inference.detect import DetectConfig, Detector
    from rcnn_cli.models import FastRCNN, default_config
    from rcnn_cli.models.heads import FastRCNNHead

    torch.manual_seed(0)
    model = FastRCNN(default_config("small", 2, fc6_dim=16, fc7_dim=16)).eval()
    with torch.no_grad():  # deltas large enough to move the boxes, scores high enough to stay in play
        model.head.bbox_pred.weight.normal_(0, 0.05)
        model.head.cls_score.bias.copy_(torch.tensor([-3.0, 2.0, 1.0]))
    features = model.features(torch.randn(1, 3, 64, 80))
    boxes = torch.tensor([[4.0, 4.0, 40.0, 30.0], [10.0, 8.0, 70.0, 60.0], [0.0, 0.0, 20.0, 20.0]])
    im_scale, height, width = 0.5, 128, 160  # boxes are in original pixels, the map's image is half size
    once = Detector(model, ["a", "b"], DetectConfig())
    twice = Detector(model, ["a", "b"], DetectConfig(refine=1))
    with torch.inference_mode():
        s1, b1 = once.head_passes(features, boxes, im_scale, height, width)
        s2, b2 = twice.head_passes(features, boxes, im_scale, height, width)
        # by hand: each RoI moved to its best class's box, the head on those
        moved = b1[torch.arange(3), s1.argmax(dim=1)]
        rois = torch.cat([torch.zeros(3, 1), moved * im_scale], dim=1)
        logits, deltas = model.head(features, rois)
        s_hand, b_hand = FastRCNNHead.scores_and_boxes(logits, deltas, moved, height, width)
    assert s1.shape == (3, 2) and b1.shape == (3, 2, 4)
    assert not torch.allclose(moved, boxes)  # the second pass sees other boxes
    torch.testing.assert_close(s2, torch.cat([s1, s_hand]))
    torch.testing.assert_close(b2, torch.cat([b1, b_hand]))
