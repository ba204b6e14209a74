"""The exported proposal layer (masking, a stable sort, NMS on logits) keeps the same proposals in the
same order as the proposal layer that training and ``rcnn detect`` run (dropping small boxes first,
topk then a sort), on made-up RPN outputs built to hit its corners and on a real model's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rcnn_cli.inference.export.proposal_layer import proposals_in_graph
from rcnn_cli.models import load_checkpoint
from rcnn_cli.models.preprocess import prepare_image
from rcnn_cli.rpn.anchors import anchors
from rcnn_cli.rpn.proposal_layer import propose_boxes
from rcnn_cli.rpn.settings import ProposalLayerConfig
from support.export import SCALES, faster_checkpoint, sample_rgb

pytestmark = pytest.mark.usefixtures("one_thread")


def made_up(seed: int, ties: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchors of a 12×16 map at stride 8 (1728 of them), logits (with many exact ties when ``ties``)
    and deltas that make a third of the boxes small, some without area, many past the image's edge."""
    generator = torch.Generator().manual_seed(seed)
    grid = anchors((12, 16), 8, (16.0, 32.0, 64.0), (0.5, 1.0, 2.0))
    count = grid.shape[0]
    logits = torch.randn(count, generator=generator) * 3
    if ties:
        logits = logits.round()  # ~15 distinct values: ties everywhere, also at the pre-NMS cut-off
    deltas = torch.randn(count, 4, generator=generator) * 0.4
    deltas[: count // 3, 2:] = -3.0  # boxes of 1/20 the anchor's sides: below min_size
    deltas[count // 3 : count // 3 + 40, 2] = -20.0  # width ~0
    return grid, logits, deltas


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(
    "layer",
    [
        ProposalLayerConfig(),  # 6000 / 300: more than A, so every real box is ranked
        ProposalLayerConfig(pre_nms_top_n=400, post_nms_top_n=60, nms_iou=0.5, min_size=6.0),
        ProposalLayerConfig(pre_nms_top_n=1500, post_nms_top_n=1500, nms_iou=0.7, min_size=0.0),
    ],
)
def test_the_same_proposals_in_the_same_order(ties: bool, layer: ProposalLayerConfig) -> None:
    for seed in range(3):
        grid, logits, deltas = made_up(seed, ties)
        height, width = 90, 125  # not multiples of the stride: boxes cross the edges
        ((expected, _scores),) = propose_boxes(grid, logits[None], deltas[None], [(height, width)], layer)
        got = proposals_in_graph(grid, logits, deltas, height, width, layer)
        assert len(expected) > 0
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_fewer_real_boxes_than_the_pre_nms_count() -> None:
    """All but 25 boxes below min_size: the masked ones fill the ranking's tail and none comes out."""
    grid, logits, deltas = made_up(0, ties=False)
    deltas[:-25, 2:] = -3.0  # only the last 25 (made_up makes the first third small)
    layer = ProposalLayerConfig(pre_nms_top_n=1000, post_nms_top_n=500, min_size=4.0)
    ((expected, _scores),) = propose_boxes(grid, logits[None], deltas[None], [(96, 128)], layer)
    got = proposals_in_graph(grid, logits, deltas, 96, 128, layer)
    assert 0 < len(got) <= 25
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_a_real_model_on_sample_images(tmp_path: Path) -> None:
    model, _meta = load_checkpoint(faster_checkpoint(tmp_path / "model.pt"))
    config = model.config
    for small in (False, True):
        layer = replace(config.rpn.proposals, pre_nms_top_n=200, post_nms_top_n=40) if small else None
        for _name, rgb in sample_rgb():
            for scale in SCALES:
                image, _ = prepare_image(rgb, scale, config.max_size, config.pixel_mean, config.pixel_std)
                with torch.no_grad():
                    features = model.features(image[None])
                    out = model.rpn(features)
                    size = tuple(image.shape[-2:])
                    ((expected, _scores),) = model.rpn.proposals(out, [size], layer)
                    got = proposals_in_graph(
                        out.anchors, out.objectness[0], out.deltas[0], *size, layer or config.rpn.proposals
                    )
                assert len(expected) > 10
                np.testing.assert_array_equal(got.numpy(), expected.numpy())
