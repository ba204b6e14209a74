"""The RPN head (Faster R-CNN §3.1): a small network slid over the backbone's feature map.

A 3×3 conv (the paper's n = 3 sliding window) with ReLU maps each cell to a ``mid_channels`` feature
(256-d for ZF, 512-d for VGG16), read by two sibling 1×1 convs: the objectness classifier and the box
regressor. The classifier gives **one logit per anchor** (k outputs, the sigmoid / binary log-loss form)
rather than the paper's two-class softmax (2k outputs); the two are equivalent, and one logit is what
:func:`rcnn_cli.rpn.loss.rpn_loss` reads. Shapes: N images, C channels, H'×W' cells, k anchors per cell,
A = H'·W'·k.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RPNHead(nn.Module):
    """3×3 conv + ReLU, then 1×1 objectness (k) and 1×1 box deltas (4k).

    Weights are drawn from N(0, 0.01²) and biases are 0, as the paper initializes its new layers (§3.1.3).
    """

    def __init__(self, in_channels: int, num_anchors: int, mid_channels: int = 512) -> None:
        super().__init__()
        self.num_anchors = int(num_anchors)
        self.conv = nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1)
        self.objectness = nn.Conv2d(mid_channels, self.num_anchors, kernel_size=1)
        self.bbox_deltas = nn.Conv2d(mid_channels, 4 * self.num_anchors, kernel_size=1)
        for layer in (self.conv, self.objectness, self.bbox_deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """features ``Tensor[N, C, H', W']`` -> (objectness ``Tensor[N, A]``, deltas ``Tensor[N, A, 4]``).

        Flattened in the order of :func:`rcnn_cli.rpn.anchors.anchors`: cell-major (row i, then column j),
        then the k anchors of the cell; channel t of ``objectness`` (channels 4t..4t+3 of the deltas)
        belongs to anchor t of every cell.
        """
        n, _, height, width = features.shape
        hidden = torch.relu(self.conv(features))
        k = self.num_anchors
        scores = self.objectness(hidden)  # Tensor[N, k, H', W']
        scores = scores.permute(0, 2, 3, 1).reshape(n, height * width * k)
        deltas = self.bbox_deltas(hidden)  # Tensor[N, 4k, H', W'], channel 4t + c
        deltas = deltas.view(n, k, 4, height, width).permute(0, 3, 4, 1, 2).reshape(n, height * width * k, 4)
        return scores, deltas
