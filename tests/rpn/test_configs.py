"""Every RPN config checks itself and names the option the user got wrong."""

from __future__ import annotations

import pytest

from rcnn_cli.errors import RcnnError
from rcnn_cli.rpn.anchor_targets import AnchorTargetConfig
from rcnn_cli.rpn.proposal_layer import ProposalLayerConfig


@pytest.mark.parametrize(
    ("config", "option", "kwargs"),
    [
        (AnchorTargetConfig, "--rpn-negative-iou", {"negative_iou": 0.8}),
        (AnchorTargetConfig, "--rpn-batch-size", {"batch_size": 0}),
        (AnchorTargetConfig, "--rpn-positive-fraction", {"positive_fraction": 1.5}),
        (AnchorTargetConfig, "--rpn-allowed-border", {"allowed_border": -1.0}),
        (ProposalLayerConfig, "--rpn-post-nms-top-n", {"pre_nms_top_n": 10, "post_nms_top_n": 20}),
        (ProposalLayerConfig, "--rpn-pre-nms-top-n", {"pre_nms_top_n": 0}),
        (ProposalLayerConfig, "--rpn-nms-iou", {"nms_iou": 0.0}),
        (ProposalLayerConfig, "--rpn-min-size", {"min_size": -1.0}),
    ],
)
def test_config_names_the_option(config: type, option: str, kwargs: dict) -> None:
    with pytest.raises(RcnnError, match=option):
        config(**kwargs)
