"""The R-CNN / SPPnet model (rcnn_cli.models.rcnn): its features, SVM scores and regressed boxes against
independent computations, and its checkpoint kind."""

from __future__ import annotations

import pytest
import torch

from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.models import load_checkpoint, save_checkpoint
from rcnn_cli.models.fast_rcnn import default_config
from rcnn_cli.models.faster_rcnn import build_model
from rcnn_cli.models.rcnn import RCNN
from rcnn_cli.rcnn.warp import warp_regions


def tiny(method: str = "rcnn", **changes) -> RCNN:
    torch.manual_seed(0)
    config = default_config("small", 2, fc6_dim=16, fc7_dim=8, method=method, **changes)
    model = build_model(config)
    assert isinstance(model, RCNN)
    return model.eval()


def test_warp_size_and_padding_defaults_follow_the_backbone() -> None:
    cfg = tiny().config
    assert (cfg.region_size, cfg.region_padding) == (64, 5)  # 16 px of 227, scaled to 64
    vgg = default_config("vgg16", 2, method="rcnn")
    assert (vgg.region_size, vgg.region_padding) == (224, 16)
    assert default_config("caffenet", 2, method="rcnn").region_size == 227
    assert tiny(warp_size=32, context_padding=0).config.region_padding == 0
    with pytest.raises(RcnnError, match="--method must be one of"):
        default_config("small", 2, method="rccn")


def test_warped_pool5_is_each_window_through_the_conv_layers_alone() -> None:
    model = tiny(warp_size=32, context_padding=4)
    image = torch.randn(3, 50, 70)
    boxes = torch.tensor([[0.0, 0.0, 20.0, 30.0], [10.0, 5.0, 69.0, 49.0], [30.0, 20.0, 40.0, 24.0]])
    with torch.no_grad():
        batched = model.warped_pool5(image, boxes, batch=2)  # two conv passes: 2 + 1 windows
        for r in range(3):
            window = warp_regions(image, boxes[r : r + 1], 32, 4)
            maps = model.backbone(window)
            alone = model.head.pool(maps, torch.tensor([[0.0, 0.0, 0.0, 32.0, 32.0]])).flatten(1)
            torch.testing.assert_close(batched[r : r + 1], alone, rtol=1e-4, atol=1e-5)
    assert batched.shape == (3, model.pooled_dim())


def test_svm_scores_and_regressed_boxes_by_hand() -> None:
    model = tiny()
    K, d7, d5 = 2, 8, model.pooled_dim()
    weight = torch.zeros(K, d7)
    weight[0, 0], weight[1, 1] = 1.0, -2.0
    model.set_svms(weight, torch.tensor([0.5, 1.0]), feature_scale=3.0)
    fc7 = torch.zeros(1, d7)
    fc7[0, 0], fc7[0, 1] = 2.0, 1.0
    # class 1: 3·2·1 + 0.5 = 6.5; class 2: 3·1·(-2) + 1 = -5
    torch.testing.assert_close(model.svm_scores(fc7), torch.tensor([[6.5, -5.0]]))
    # Box regression: class 1 moves the box right by 0.1 of its width (tx = 0.1 from feature 0 of
    # pool5 at scale 0.5: 0.5 · 2 · 0.1); class 2 doubles its height (th = log 2, a bias).
    bw = torch.zeros(K, d5, 4)
    bw[0, 0, 0] = 0.1
    bb = torch.zeros(K, 4)
    bb[1, 3] = torch.log(torch.tensor(2.0))
    model.set_box_regressors(bw, bb, feature_scale=0.5)
    pool5 = torch.zeros(1, d5)
    pool5[0, 0] = 2.0
    proposal = torch.tensor([[10.0, 10.0, 30.0, 20.0]])  # 20 x 10, centre (20, 15)
    boxes = model.refined_boxes(pool5, proposal, height=100, width=100)
    torch.testing.assert_close(boxes[0, 0], torch.tensor([12.0, 10.0, 32.0, 20.0]))
    torch.testing.assert_close(boxes[0, 1], torch.tensor([10.0, 5.0, 30.0, 25.0]))
    # Clipped to the image.
    edge = model.refined_boxes(pool5, torch.tensor([[80.0, 0.0, 100.0, 10.0]]), height=100, width=100)
    assert edge[0, 0, 2] == 100


def test_checkpoint_keeps_the_svms_and_regressors(tmp_path) -> None:
    model = tiny("sppnet")
    model.set_svms(torch.randn(2, 8), torch.randn(2), 2.5)
    model.set_box_regressors(torch.randn(2, model.pooled_dim(), 4), torch.randn(2, 4), 0.25)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, {"class_names": ["a", "b"]})
    raw = torch.load(path, weights_only=True)
    assert raw["kind"] == "sppnet"
    loaded, _ = load_checkpoint(path)
    assert isinstance(loaded, RCNN) and loaded.config.method == "sppnet"
    for name in ("svm_weight", "svm_bias", "svm_feature_scale", "bbox_weight", "bbox_bias"):
        torch.testing.assert_close(getattr(loaded, name), getattr(model, name))
    raw["kind"] = "fast_rcnn"  # a file that says it is something else is refused, naming it
    torch.save(raw, tmp_path / "lies.pt")
    with pytest.raises(ArtifactError, match=r"lies.pt: kind 'fast_rcnn' does not match its config"):
        load_checkpoint(tmp_path / "lies.pt")
