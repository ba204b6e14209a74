"""RPNHead: shapes, the paper's initialization, and the anchor order of its outputs."""

from __future__ import annotations

import torch

from rcnn_cli.rpn.anchors import anchors
from rcnn_cli.rpn.head import RPNHead


def test_shapes() -> None:
    head = RPNHead(in_channels=8, num_anchors=9, mid_channels=16)
    scores, deltas = head(torch.randn(2, 8, 5, 7))
    assert scores.shape == (2, 5 * 7 * 9) and deltas.shape == (2, 5 * 7 * 9, 4)


def test_init_is_normal_std_001_with_zero_bias() -> None:
    torch.manual_seed(0)
    head = RPNHead(in_channels=64, num_anchors=9, mid_channels=256)
    for layer in (head.conv, head.objectness, head.bbox_deltas):
        std = layer.weight.std().item()
        assert abs(std - 0.01) < 0.001, std
        assert abs(layer.weight.mean().item()) < 0.001
        assert torch.count_nonzero(layer.bias) == 0


def test_output_order_matches_anchors() -> None:
    """With the features (i, j) and biases t, anchor row (i·W' + j)·k + t scores its own (i, j, t)."""
    height, width, k = 3, 4, 6
    head = RPNHead(in_channels=2, num_anchors=k, mid_channels=2)
    ii, jj = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    features = torch.stack((ii, jj))[None]  # Tensor[1, 2, H', W']
    with torch.no_grad():
        head.conv.weight.zero_()
        head.conv.weight[0, 0, 1, 1] = 1.0  # identity on the centre tap: hidden = (i, j)
        head.conv.weight[1, 1, 1, 1] = 1.0
        head.conv.bias.zero_()
        # score of anchor t at (i, j) = (i·W' + j)·k + t, its row index
        head.objectness.weight[:, 0, 0, 0] = float(width * k)
        head.objectness.weight[:, 1, 0, 0] = float(k)
        head.objectness.bias.copy_(torch.arange(float(k)))
        # delta c of anchor t: 10·index + c
        head.bbox_deltas.weight[:, 0, 0, 0] = 10.0 * width * k
        head.bbox_deltas.weight[:, 1, 0, 0] = 10.0 * k
        head.bbox_deltas.bias.copy_(torch.tensor([10.0 * t + c for t in range(k) for c in range(4)]))
    scores, deltas = head(features)
    num = anchors((height, width), 16, scales=(8, 16, 32), ratios=(1, 2)).shape[0]
    assert scores.shape == (1, num)
    index = torch.arange(float(num))
    torch.testing.assert_close(scores[0], index)
    torch.testing.assert_close(deltas[0], 10 * index[:, None] + torch.arange(4.0))
