"""WeightAverage (``rcnn train --ema``) against the update rule computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.weight_average import WeightAverage


def test_the_average_follows_the_ramp_then_the_decay() -> None:
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(0.0)
    average = WeightAverage(model, decay=0.2)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[1].running_mean.fill_(5.0)
    average.update(model)  # t = 1: d = min(0.2, 2/11) = 2/11
    assert average.average["0.weight"].item() == pytest.approx(9 / 11)
    assert average.average["1.running_mean"].item() == 5.0  # a buffer is copied, not averaged
    with torch.no_grad():
        model[0].weight.fill_(2.0)
    average.update(model)  # t = 2: d = min(0.2, 3/12) = 0.2
    assert average.average["0.weight"].item() == pytest.approx(0.2 * 9 / 11 + 0.8 * 2.0)
    assert model[0].weight.item() == 2.0  # the model's own weights are left alone


def test_the_average_round_trips_through_its_state() -> None:
    model = nn.Linear(2, 1)
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(model)
    again = WeightAverage(nn.Linear(2, 1), decay=0.5)
    again.load_state_dict(average.state_dict())
    assert again.decay == 0.9 and again.updates == 1 and again.current_decay() == average.current_decay()
    torch.testing.assert_close(again.average["weight"], average.average["weight"])


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_a_decay_outside_0_1_is_refused(decay: float) -> None:
    with pytest.raises(RcnnError, match=rf"^--ema must be in \(0, 1\), got {decay}$"):
        TrainConfig(ema=decay)
