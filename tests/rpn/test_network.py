"""RegionProposalNetwork and RPNConfig: the parts put together, and the config as checkpoints store it."""

from __future__ import annotations

import pytest
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.rpn.anchor_targets import AnchorTargetConfig
from rcnn_cli.rpn.anchors import AnchorConfig, anchors
from rcnn_cli.rpn.network import RegionProposalNetwork, RPNConfig, default_mid_channels
from rcnn_cli.rpn.proposal_layer import ProposalLayerConfig


def test_config_round_trips_through_a_plain_dict() -> None:
    config = RPNConfig(AnchorConfig((16.0, 40.0), (0.5, 1.0)), 64, ProposalLayerConfig(100, 20, 0.6, 4.0))
    assert RPNConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "data,message",
    [
        ([1, 2], "expected a mapping"),
        ({"anchors": {"scales": [8]}, "mid_channels": 8}, "incomplete or malformed"),
        ({"anchors": {"scales": [8], "ratios": [1]}, "mid_channels": "8"}, "expected an integer"),
        ({"anchors": {"scales": [-8], "ratios": [1]}, "mid_channels": 8}, "--anchor-scales"),
        (
            {"anchors": {"scales": [8], "ratios": [1]}, "mid_channels": 8, "proposals": {"nms_iou": 2}},
            "--rpn-nms-iou",
        ),
    ],
)
def test_a_malformed_config_is_one_error(data, message) -> None:
    with pytest.raises(RcnnError, match=message):
        RPNConfig.from_dict(data)


def test_backbone_defaults() -> None:
    assert default_mid_channels(512) == 512 and default_mid_channels(128) == 128
    assert default_mid_channels(2048) == 512
    small = RPNConfig.for_backbone("small", 128)
    assert small.anchors.scales == (32.0, 64.0, 128.0) and small.mid_channels == 128
    assert RPNConfig.for_backbone("vgg16", 512, mid_channels=256).mid_channels == 256


def test_forward_gives_one_output_per_anchor_of_the_grid() -> None:
    torch.manual_seed(0)
    rpn = RegionProposalNetwork(8, 16, RPNConfig(AnchorConfig((32.0, 64.0), (0.5, 1.0, 2.0)), 16))
    out = rpn(torch.randn(2, 8, 5, 7))
    assert out.objectness.shape == (2, 5 * 7 * 6) and out.deltas.shape == (2, 5 * 7 * 6, 4)
    torch.testing.assert_close(out.anchors, anchors((5, 7), 16, (32.0, 64.0), (0.5, 1.0, 2.0)))
    proposals = rpn.proposals(out, [(80, 112), (80, 112)])
    assert len(proposals) == 2
    for boxes, scores in proposals:
        assert boxes.shape[0] == scores.shape[0] <= 300
        assert (boxes[:, 2] <= 112).all() and (boxes[:, 3] <= 80).all()


def test_loss_counts_each_image_and_its_accuracy() -> None:
    torch.manual_seed(0)
    rpn = RegionProposalNetwork(8, 16, RPNConfig(AnchorConfig((32.0,), (1.0,)), 16))
    out = rpn(torch.randn(2, 8, 4, 4))
    gt = [torch.tensor([[16.0, 16.0, 48.0, 48.0]]), torch.zeros((0, 4))]
    targets = AnchorTargetConfig(batch_size=8)
    loss = rpn.loss(out, gt, [(64, 64), (64, 64)], targets, torch.Generator().manual_seed(0))
    # Of the 4x4 anchors (32 px at stride 16 in a 64-px image) only the middle 2x2 are inside the image.
    # Image 1: all four have IoU 576/1472 with the gt box, tied best: positive. Image 2: four negatives.
    assert loss.sampled == 8 and loss.positives == 4
    assert 0.0 <= loss.accuracy <= 1.0
    loss.total.backward()
    assert rpn.head.objectness.weight.grad is not None and rpn.head.bbox_deltas.weight.grad.abs().sum() > 0
