"""The proposals, RoI and anchor pictures: what they draw is what the stages compute (training's sampler,
the RPN's labels), and each writes a PNG one can look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rcnn_cli.boxes import box_iou
from rcnn_cli.data import read_record
from rcnn_cli.pictures.anchors import anchor_layout, draw_anchors
from rcnn_cli.pictures.inputs import pick_image
from rcnn_cli.pictures.network_view import NetworkView
from rcnn_cli.pictures.proposals import box_sizes, draw_proposals
from rcnn_cli.pictures.rois import draw_rois, sample_minibatches
from rcnn_cli.proposals.registry import ProposalSettings
from rcnn_cli.proposals.sources import method_source
from rcnn_cli.rpn.anchors import AnchorConfig, anchors
from rcnn_cli.training.sampler_config import SamplerConfig
from support.pictures import assert_picture, sample_path

DENSE = method_source(ProposalSettings(method="dense", max_proposals=2000))


def test_the_proposals_picture(tmp_path: Path) -> None:
    picked = pick_image(None, str(sample_path()), None, "BloodImage_00000")
    rgb = read_record(picked.record)
    boxes = DENSE(picked.record, rgb)
    path = draw_proposals(rgb, boxes, tmp_path / "p.png", top_n=30, gt_boxes=picked.record.boxes, title="x")
    assert_picture(path)
    assert box_sizes(np.array([[0, 0, 4, 9], [1, 1, 1, 5]])).tolist() == [6.0, 0.0]


def test_the_rois_are_training_s_samples(tmp_path: Path) -> None:
    picked = pick_image(None, str(sample_path()), "trainval", "BloodImage_00026")
    records = picked.dataset.records
    chosen = records.index(picked.record)
    config = SamplerConfig()
    batches = sample_minibatches(records, chosen, DENSE, read_record, config, thumbnails=4, seed=1)
    hierarchical, region = batches.hierarchical, batches.region_wise
    assert [s.record.image_id for s in (hierarchical[0], region[0])] == [picked.record.image_id] * 2
    assert len(hierarchical) == config.images_per_batch and len(region) == 4
    assert len({s.record.image_id for s in region}) == 4  # one RoI from each of R images
    per_image = config.rois_per_batch // config.images_per_batch
    for sample, expected in [(s, per_image) for s in hierarchical] + [(s, 1) for s in region]:
        assert len(sample.labels) == expected
        iou = box_iou(sample.rois, sample.gt).max(dim=1).values
        fg = sample.labels > 0
        assert (iou[fg] >= config.fg_threshold).all()
        assert ((iou[~fg] >= config.bg_threshold_lo) & (iou[~fg] < config.bg_threshold_hi)).all()
    assert all(s.num_fg == round(0.25 * 64) for s in hierarchical)  # 16 of 64: the images have enough
    assert_picture(draw_rois(batches, tmp_path / "rois.png"), min_side=900)


def test_the_anchors_are_the_rpn_s(tmp_path: Path) -> None:
    picked = pick_image(None, str(sample_path()), None, "BloodImage_00000")
    view = NetworkView.for_backbone("small")
    image, im_scale = view.resize(read_record(picked.record))
    gt = torch.from_numpy(picked.record.boxes) * im_scale
    config = AnchorConfig.for_backbone("small")
    layout = anchor_layout(view, config, image.shape[:2], gt, at=(100.0, 60.0))
    i, j = layout.cell
    assert (i, j) == (60 // view.stride, 100 // view.stride)
    grid = anchors(layout.map_size, view.stride, config.scales, config.ratios)
    k = config.num_anchors
    assert torch.equal(layout.cell_anchors, grid[(i * layout.map_size[1] + j) * k :][:k])
    centres = (layout.cell_anchors[:, :2] + layout.cell_anchors[:, 2:]) / 2
    assert torch.allclose(centres, torch.tensor([(j + 0.5) * view.stride, (i + 0.5) * view.stride]))
    assert (layout.labels >= 0).sum() == 256 and (layout.labels == 1).sum() <= 128
    assert ((layout.labels == 1) <= (layout.unsampled == 1)).all()  # sampling only drops
    best = box_iou(grid[layout.inside], gt).argmax(dim=0)  # every gt box's best anchor is positive
    assert (layout.unsampled[layout.inside][best] == 1).all()
    assert_picture(draw_anchors(layout, image, tmp_path / "anchors.png"))
