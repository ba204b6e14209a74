"""The training step on a multi-scale features folder: each RoI pooled from its assigned scale's map."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from rcnn_cli.models.fast_rcnn import FastRCNN, default_config
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.distributed import DistInfo
from rcnn_cli.training.minibatch import ImageSample
from rcnn_cli.training.step import IterationStep


class ConstantPyramid:
    """A features source at two scales whose maps are constant, 1.0 at s = 0.5 and 2.0 at s = 1.0, so a
    pooled value says which map a RoI was read from."""

    uses_features = True
    uses_pyramid = True
    scales = (250, 500)

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.read: list[tuple[str, bool]] = []

    def pyramid(self, record: Any, flip: bool) -> list[tuple[Tensor, float]]:
        self.read.append((record.image_id, flip))
        return [
            (torch.full((self.channels, 32, 32), 1.0), 0.5),
            (torch.full((self.channels, 63, 63), 2.0), 1.0),
        ]

    def get(self, record: Any, scale: int, flip: bool) -> tuple[Tensor, float]:
        raise AssertionError("a multi-scale source is read whole, not at the image's random scale")


def test_the_step_pools_each_roi_at_its_assigned_scale() -> None:
    torch.manual_seed(0)
    model = FastRCNN(default_config("small", 2, pool="spp", fc6_dim=16, fc7_dim=16))
    source = ConstantPyramid(model.backbone.out_channels)
    step = IterationStep(model, TrainConfig(lr=0.001), source, DistInfo(), torch.device("cpu"))
    seen: list[Tensor] = []
    forward_pooled = model.head.forward_pooled

    def spy(pooled: Tensor) -> tuple[Tensor, Tensor]:
        seen.append(pooled.detach().clone())
        return forward_pooled(pooled)

    model.head.forward_pooled = spy  # type: ignore[method-assign]
    boxes = torch.tensor(
        [
            [0.0, 0.0, 100.0, 100.0],  # 10⁴ px: nearer 224² at s = 1.0 (10⁴) than at 0.5 (2500)
            [0.0, 0.0, 448.0, 448.0],  # 224² at s = 0.5 exactly
            [50.0, 60.0, 250.0, 300.0],  # 48000 px: 48000 at s = 1.0, 12000 at 0.5
            [20.0, 0.0, 480.0, 490.0],  # 225400 px: 56350 at s = 0.5
        ]
    )
    sample = ImageSample(
        SimpleNamespace(image_id="a"),
        scale=250,  # the image's random scale: ignored here
        flip=True,
        boxes=boxes,
        labels=torch.tensor([1, 2, 0, 1]),
        targets=torch.zeros(4, 4),
        ious=torch.tensor([0.9, 0.6, 0.2, 0.7]),
    )
    before = model.head.fc6.weight.detach().clone()
    sums = step([sample], iteration=0)
    assert source.read == [("a", True)]
    (pooled,) = seen
    assert pooled.shape == (4, model.backbone.out_channels * 50)
    assert pooled[:, 0].tolist() == [2.0, 1.0, 2.0, 1.0]  # the map each RoI came from, in their order
    assert all(bool((row == row[0]).all()) for row in pooled)
    assert (sums.fg, sums.bg) == (3, 1) and math.isfinite(sums.loss)
    assert not torch.equal(model.head.fc6.weight, before)  # the step trained fc6
