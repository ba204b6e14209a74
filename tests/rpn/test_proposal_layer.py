"""propose_boxes against a readable pure-PyTorch reference; min size, top-N and the config."""

from __future__ import annotations

import math

import pytest
import torch

from rcnn_cli.rpn.anchors import anchors
from rcnn_cli.rpn.proposal_layer import ProposalLayerConfig, propose_boxes


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def reference(anchors_, logits, deltas, size, config):
    """Decode, clip, drop small, sort, keep pre-N, greedy NMS by an IoU loop, keep post-N."""
    height, width = size
    wa = anchors_[:, 2] - anchors_[:, 0]
    ha = anchors_[:, 3] - anchors_[:, 1]
    xa = anchors_[:, 0] + 0.5 * wa
    ya = anchors_[:, 1] + 0.5 * ha
    clamp = math.log(1000.0 / 16)
    cx = deltas[:, 0] * wa + xa
    cy = deltas[:, 1] * ha + ya
    w = torch.exp(deltas[:, 2].clamp(max=clamp)) * wa
    h = torch.exp(deltas[:, 3].clamp(max=clamp)) * ha
    boxes = torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ok = (bw >= config.min_size) & (bh >= config.min_size) & (bw > 0) & (bh > 0)
    boxes, logits = boxes[ok], logits[ok]
    order = sorted(range(len(logits)), key=lambda i: (-logits[i].item(), i))[: config.pre_nms_top_n]
    kept: list[int] = []
    for i in order:
        if all(_iou(boxes[i], boxes[j]) <= config.nms_iou for j in kept):
            kept.append(i)
    kept = kept[: config.post_nms_top_n]
    return boxes[kept], torch.sigmoid(logits[kept])


@pytest.mark.parametrize("seed", [0, 1])
def test_same_boxes_as_the_reference(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = anchors((6, 8), 8, scales=(16, 32), ratios=(0.5, 1, 2))  # 288 anchors
    logits = torch.randn(2, a.shape[0], generator=gen)
    deltas = 0.5 * torch.randn(2, a.shape[0], 4, generator=gen)
    deltas[0, :5, 2:] = 20.0  # past the clamp
    sizes = [(48, 64), (40, 50)]
    config = ProposalLayerConfig(pre_nms_top_n=200, post_nms_top_n=60, min_size=4.0)
    out = propose_boxes(a, logits, deltas, sizes, config)
    assert len(out) == 2
    for i, (boxes, scores) in enumerate(out):
        ref_boxes, ref_scores = reference(a, logits[i], deltas[i], sizes[i], config)
        assert boxes.shape[0] > 10
        torch.testing.assert_close(boxes, ref_boxes, rtol=0, atol=0)
        torch.testing.assert_close(scores, ref_scores)  # sigmoid may differ by an ulp with vector length
        assert (boxes[:, 0::2] <= sizes[i][1]).all() and (boxes[:, 1::2] <= sizes[i][0]).all()


def test_min_size_and_top_n() -> None:
    a = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 23.0, 10.0], [40.0, 0.0, 50.0, 10.0], [60.0, 0, 70, 10]]
    )
    logits = torch.tensor([[1.0, 9.0, 2.0, 3.0]])
    deltas = torch.zeros(1, 4, 4)
    ((boxes, scores),) = propose_boxes(a, logits, deltas, [(100, 100)], ProposalLayerConfig(min_size=5.0))
    torch.testing.assert_close(boxes, a[[3, 2, 0]])  # the 3-px-wide box is gone; by decreasing score
    torch.testing.assert_close(scores, torch.sigmoid(torch.tensor([3.0, 2.0, 1.0])))
    config = ProposalLayerConfig(pre_nms_top_n=2, post_nms_top_n=1, min_size=0.0)
    ((boxes, _),) = propose_boxes(a, logits, deltas, [(100, 100)], config)
    torch.testing.assert_close(boxes, a[[1]])
    # pre-NMS top-N counts before suppression: the 2 best overlap, so one box is left of the 2
    overlapping = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 9.0], [50.0, 50, 60, 60]])
    config = ProposalLayerConfig(pre_nms_top_n=2, post_nms_top_n=2, min_size=0.0)
    ((boxes, _),) = propose_boxes(
        overlapping, torch.tensor([[3.0, 2.0, 1.0]]), torch.zeros(1, 3, 4), [(99, 99)], config
    )
    torch.testing.assert_close(boxes, overlapping[[0]])


def test_presets() -> None:
    train, test = ProposalLayerConfig.for_training(), ProposalLayerConfig.for_testing()
    assert (train.pre_nms_top_n, train.post_nms_top_n, train.nms_iou) == (12000, 2000, 0.7)
    assert (test.pre_nms_top_n, test.post_nms_top_n) == (6000, 300) and test == ProposalLayerConfig()


@pytest.mark.parametrize("count", [1, 7, 50, 200, 500])
def test_best_first_is_a_stable_descending_sort_even_with_ties(count: int) -> None:
    from rcnn_cli.rpn.proposal_layer import _best_first

    logits = torch.randint(0, 20, (300,), generator=torch.Generator().manual_seed(count)).float()
    expected = logits.sort(descending=True, stable=True).indices[:count]
    assert torch.equal(_best_first(logits, count), expected)
