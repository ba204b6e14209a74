"""FastRCNN shapes, freezing, torchvision-layout weights, checkpoints with folded box normalization."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rcnn_cli.errors import DataError, RcnnError
from rcnn_cli.models import (
    FastRCNN,
    build_backbone,
    default_config,
    images_to_blob,
    load_checkpoint,
    load_torchvision_weights,
    prepare_image,
    save_checkpoint,
)
from rcnn_cli.models.low_rank import apply_low_rank_structure
from rcnn_cli.models.preprocess import normalize_image

ROIS = torch.tensor([[0, 0, 0, 40, 30], [0, 10, 5, 60, 60], [1, 5, 5, 20, 50]], dtype=torch.float32)


def small_model(num_classes: int = 3, **kw) -> FastRCNN:
    torch.manual_seed(0)
    return FastRCNN(default_config("small", num_classes, fc6_dim=32, fc7_dim=16, **kw))


@pytest.mark.parametrize("pool,bins", [("roi", 49), ("spp", 50)])
def test_small_model_shapes(pool: str, bins: int) -> None:
    model = small_model(pool=pool).eval()
    images = torch.randn(2, 3, 64, 80)
    feats = model.features(images)
    assert feats.shape == (2, 128, 8, 10)  # stride 8
    assert model.head.fc6.in_features == 128 * bins
    scores, deltas = model.head(feats, ROIS)
    assert scores.shape == (3, 4) and deltas.shape == (3, 16)
    s2, d2 = model(images, ROIS)
    torch.testing.assert_close(s2, scores)
    torch.testing.assert_close(d2, deltas)


def test_predictor_init_stds() -> None:
    model = FastRCNN(default_config("small", 20, fc6_dim=64, fc7_dim=512))
    assert abs(model.head.cls_score.weight.std().item() - 0.01) < 0.001
    assert abs(model.head.bbox_pred.weight.std().item() - 0.001) < 0.0001
    assert model.head.cls_score.bias.abs().max() == 0 and model.head.bbox_pred.bias.abs().max() == 0


def test_paper_backbones_stride_and_layout() -> None:
    # VGG16 conv layers sit at torchvision's features indices, so vgg16.pth keys map one to one.
    vgg = build_backbone("vgg16")
    convs = [i for i, m in enumerate(vgg.features) if isinstance(m, nn.Conv2d)]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert vgg.layer_index["conv3_1"] == 10 and len(vgg.features) == 30  # pool5 dropped
    x = torch.randn(1, 3, 96, 128)
    for name in ("caffenet", "vgg_cnn_m_1024", "vgg16"):
        out = build_backbone(name)(x)
        assert out.shape[1] == build_backbone(name).out_channels
        assert abs(out.shape[2] - 96 / 16) <= 1.5 and abs(out.shape[3] - 128 / 16) <= 1.5, name
    with pytest.raises(RcnnError, match="unknown backbone"):
        build_backbone("resnet")


def test_freeze_below_vgg16_default_is_conv1_conv2() -> None:
    vgg = build_backbone("vgg16")
    vgg.freeze_below(vgg.spec.frozen_below)
    frozen = {i for i, m in enumerate(vgg.features) for p in m.parameters() if not p.requires_grad}
    assert frozen == {0, 2, 5, 7}  # conv1_1, conv1_2, conv2_1, conv2_2
    vgg.freeze_below(None)
    assert all(p.requires_grad for p in vgg.parameters())
    with pytest.raises(RcnnError, match="conv3_1"):
        vgg.freeze_below("conv9")


def torchvision_layout(model: FastRCNN) -> dict[str, torch.Tensor]:
    """What a torchvision classifier of this architecture would hold, with recognizable values."""
    g = torch.Generator().manual_seed(1)
    state = {}
    for key, value in model.backbone.state_dict().items():
        state[key] = torch.randn(value.shape, generator=g)  # features.N.weight / bias
    state["classifier.0.weight"] = torch.randn(model.head.fc6.weight.shape, generator=g)
    state["classifier.0.bias"] = torch.randn(model.head.fc6.bias.shape, generator=g)
    state["classifier.3.weight"] = torch.randn(model.head.fc7.weight.shape, generator=g)
    state["classifier.3.bias"] = torch.randn(model.head.fc7.bias.shape, generator=g)
    state["classifier.6.weight"] = torch.randn(1000, model.head.fc7.weight.shape[0], generator=g)
    state["classifier.6.bias"] = torch.randn(1000, generator=g)
    return state


def test_load_torchvision_weights(tmp_path) -> None:
    model = small_model()
    state = torchvision_layout(model)
    path = tmp_path / "net.pth"
    torch.save(state, path)
    cls_before = model.head.cls_score.weight.clone()
    report = load_torchvision_weights(model, path)
    torch.testing.assert_close(model.backbone.features[0].weight, state["features.0.weight"])
    torch.testing.assert_close(model.backbone.features[16].weight, state["features.16.weight"])
    torch.testing.assert_close(model.head.fc6.weight, state["classifier.0.weight"])
    torch.testing.assert_close(model.head.fc7.bias, state["classifier.3.bias"])
    torch.testing.assert_close(model.head.cls_score.weight, cls_before)  # fc8 is never loaded
    assert "classifier.6.weight" in report.skipped and "fc6.weight" in report.loaded


def test_load_torchvision_weights_refuses_mismatches(tmp_path) -> None:
    model = small_model()
    state = torchvision_layout(model)
    state["features.0.weight"] = torch.zeros(7, 3, 3, 3)
    del state["features.4.weight"]
    state["features.99.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    before = model.backbone.features[3].weight.clone()
    with pytest.raises(DataError) as err:
        load_torchvision_weights(model, path)
    msg = str(err.value)
    assert "bad.pth" in msg and "features.0.weight: shape (7, 3, 3, 3)" in msg
    assert "missing key features.4.weight" in msg and "unexpected key features.99.weight" in msg
    torch.testing.assert_close(model.backbone.features[3].weight, before)  # nothing half-loaded
    # weights_only: a pickle that would run code is refused, not executed.
    torch.save({"x": object()}, tmp_path / "evil.pth", _use_new_zipfile_serialization=True)
    with pytest.raises(DataError, match=r"evil\.pth"):
        load_torchvision_weights(model, tmp_path / "evil.pth")


def test_checkpoint_folds_box_normalization(tmp_path) -> None:
    model = small_model().eval()
    with torch.no_grad():
        model.head.bbox_pred.weight.normal_(std=0.1)
        model.head.bbox_pred.bias.normal_(std=0.1)
    means = torch.randn(4, 4) * 0.1
    stds = torch.rand(4, 4) + 0.1
    images = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        scores, normalized = model(images, ROIS)
    expected = normalized.reshape(-1, 4, 4) * stds + means
    save_checkpoint(tmp_path / "m.pt", model, {"class_names": ["a", "b", "c"]}, means, stds)
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    with torch.no_grad():
        scores2, deltas = loaded(images, ROIS)
    torch.testing.assert_close(scores2, scores)
    torch.testing.assert_close(deltas.reshape(-1, 4, 4), expected, atol=1e-5, rtol=1e-5)
    assert meta["class_names"] == ["a", "b", "c"] and meta["svd_ranks"] == {}
    assert not loaded.training
    # The training model is untouched by saving.
    with torch.no_grad():
        torch.testing.assert_close(model(images, ROIS)[1], normalized)
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["kind"] == "fast_rcnn" and raw["config"]["backbone"] == "small"


def test_checkpoint_keeps_svd_structure(tmp_path) -> None:
    model = small_model().eval()
    apply_low_rank_structure(model.head, {"fc6": 8})
    save_checkpoint(tmp_path / "svd.pt", model, {"class_names": ["a", "b", "c"]})
    loaded, meta = load_checkpoint(tmp_path / "svd.pt")
    assert meta["svd_ranks"] == {"fc6": 8} and isinstance(loaded.head.fc6, nn.Sequential)
    images = torch.randn(1, 3, 48, 48)
    rois = ROIS[:2]
    with torch.no_grad():
        torch.testing.assert_close(loaded(images, rois)[0], model(images, rois)[0])


def test_prepare_image_scales_and_normalizes() -> None:
    rgb = np.full((480, 640, 3), 128, dtype=np.uint8)
    x, im_scale = prepare_image(rgb, scale=600, max_size=1000)
    assert x.shape == (3, 600, 800) and im_scale == pytest.approx(1.25)
    x, im_scale = prepare_image(rgb, scale=600, max_size=700)  # longer side capped
    assert x.shape[2] == 700 and im_scale == pytest.approx(700 / 640)
    expected = (128 / 255 - 0.485) / 0.229
    assert x[0, 10, 10].item() == pytest.approx(expected, rel=1e-5)
    rgb2 = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb2[:, 0] = 255
    flipped, _ = prepare_image(rgb2, scale=4, max_size=10, flip=True)
    assert flipped[0, 0, -1] > flipped[0, 0, 0]
    blob = images_to_blob([torch.ones(3, 4, 5), torch.ones(3, 6, 3)])
    assert blob.shape == (2, 3, 6, 5) and blob[0, 0, 5, 0] == 0 and blob[1, 0, 0, 4] == 0


@pytest.mark.filterwarnings("error::UserWarning")
def test_normalize_image_takes_a_read_only_array() -> None:
    # Decoded images can arrive read-only (np.frombuffer, memory maps); torch.from_numpy warns on
    # those, so the normalization must copy them, and leave the caller's array untouched.
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    frozen = rgb.copy()
    frozen.flags.writeable = False
    x = normalize_image(frozen, pixel_mean=(0.0, 0.0, 0.0), pixel_std=(1.0, 1.0, 1.0))
    torch.testing.assert_close(x, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0)
    np.testing.assert_array_equal(frozen, rgb)


def test_state_dict_keeps_the_checkpoint_layout() -> None:
    # The head is a submodule, but checkpoints have always said fc6.weight, not head.fc6.weight.
    model = small_model()
    keys = list(model.state_dict())
    assert keys[-8:] == [
        f"{layer}.{kind}" for layer in ("fc6", "fc7", "cls_score", "bbox_pred") for kind in ("weight", "bias")
    ]
    assert all(k.startswith("backbone.") for k in keys[:-8])
    assert [n for n, _ in model.named_parameters()][-1] == "head.bbox_pred.bias"
    other = small_model()
    with torch.no_grad():
        other.head.fc6.weight.add_(1.0)
    other.load_state_dict(model.state_dict())  # strict: every flat key lands in the head
    torch.testing.assert_close(other.head.fc6.weight, model.head.fc6.weight, rtol=0, atol=0)
    # Nested (as DDP's wrapper nests it), the prefix is handled below the parent's own.
    wrapper = nn.ModuleDict({"model": small_model()})
    assert "model.fc6.weight" in wrapper.state_dict()
    wrapper.load_state_dict({"model." + k: v for k, v in model.state_dict().items()})


def test_head_forward_is_pool_then_fc_layers_and_outputs_decode() -> None:
    from rcnn_cli.models.heads import FastRCNNHead
    from rcnn_cli.models.losses import multi_task_loss

    model = small_model().eval()
    head: FastRCNNHead = model.head
    assert head.loss is multi_task_loss  # the paper's loss, not a second copy of it
    with torch.no_grad():
        feats = model.features(torch.randn(2, 3, 64, 80))
        logits, deltas = head(feats, ROIS)
        pooled = head.pool_rois(feats, ROIS)
        again = head.forward_pooled(pooled)
    assert pooled.shape == (3, head.fc6.in_features) and head.num_classes == 3
    torch.testing.assert_close(again[0], logits, rtol=0, atol=0)
    labels, targets = torch.tensor([0, 2, 1]), torch.randn(3, 4)
    assert float(head.loss(logits, deltas, labels, targets, lam=0.0).total) < float(
        head.loss(logits, deltas, labels, targets, lam=2.0).total
    )
    proposals = ROIS[:, 1:] * 2
    scores, boxes = head.scores_and_boxes(logits, torch.zeros_like(deltas), proposals, 100, 100)
    assert scores.shape == (3, 3) and boxes.shape == (3, 3, 4)
    torch.testing.assert_close(scores.sum(1) + logits.softmax(1)[:, 0], torch.ones(3))
    torch.testing.assert_close(boxes[:, 0], proposals.clamp(max=100))  # zero deltas: the proposal
