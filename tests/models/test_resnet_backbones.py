"""ResNet-18/50 and MobileNetV3-Large in the C4 design: the trunk's stride and shapes, the last stage
(res5; MobileNet's features 13-16) as the per-RoI head, frozen BatchNorm against torch's own BatchNorm
in eval mode, torchvision's state-dict layout (recorded once from torchvision 0.29.1 into
tests/models/data/torchvision_layouts.json) loading key by key, a file that does not fit refused with
every mismatch listed, a few training steps that fit a minibatch, and what does not apply refused in
one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rcnn_cli.errors import DataError, RcnnError
from rcnn_cli.models import FastRCNN, default_config
from rcnn_cli.models.resnet import FrozenBatchNorm2d
from rcnn_cli.models.weights import load_torchvision_weights

LAYOUTS = json.loads((Path(__file__).parent / "data" / "torchvision_layouts.json").read_text())
NAMES = ("resnet18", "resnet50", "mobilenet_v3_large")
#: C4 (the trunk's width), C5 (the head stage's).
WIDTHS = {"resnet18": (256, 512), "resnet50": (1024, 2048), "mobilenet_v3_large": (112, 960)}


def our_key(name: str, key: str) -> str:
    """Where torchvision's ``key`` goes in our model's state dict (written out, not the loader's code)."""
    if name == "mobilenet_v3_large":
        index, rest = key.removeprefix("features.").split(".", 1)
        return f"backbone.{key}" if int(index) < 13 else f"stage.{int(index) - 13}.{rest}"
    return "stage." + key.removeprefix("layer4.") if key.startswith("layer4.") else "backbone." + key


pytestmark = pytest.mark.usefixtures("one_thread")


def layout_state_dict(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values under torchvision's exact key names and shapes for ``name`` (BatchNorm variances
    positive, the counters integers, as in a real file)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in LAYOUTS["models"][name].items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            out[key] = torch.randn(shape, generator=generator) * 0.05
    return out


@pytest.mark.parametrize("name", NAMES)
def test_trunk_stride_and_stage_head_shapes(name: str) -> None:
    model = FastRCNN(default_config(name, 3)).eval()
    c4, c5 = WIDTHS[name]
    assert model.backbone.stride == 16 and model.backbone.out_channels == c4
    with torch.no_grad():
        features = model.features(torch.randn(1, 3, 160, 224))
        assert features.shape == (1, c4, 10, 14)
        rois = torch.tensor([[0.0, 0, 0, 224, 160], [0, 30, 20, 90, 100]])
        pooled = model.head.pool(features, rois)
        assert pooled.shape == (2, c4, 14, 14)
        assert model.head.stage(pooled).shape == (2, c5, 7, 7)  # the stage's stride 2
        logits, deltas = model(torch.randn(1, 3, 160, 224), rois)
    assert logits.shape == (2, 4) and deltas.shape == (2, 16)
    assert not hasattr(model.head, "fc6")


def test_frozen_batchnorm_is_batchnorm_in_eval_mode() -> None:
    generator = torch.Generator().manual_seed(0)
    reference = torch.nn.BatchNorm2d(6).eval()
    frozen = FrozenBatchNorm2d(6)
    with torch.no_grad():
        for tensor in (reference.weight, reference.bias, reference.running_mean):
            tensor.copy_(torch.randn(6, generator=generator))
        reference.running_var.copy_(torch.rand(6, generator=generator) + 0.1)
    frozen.load_state_dict({k: v for k, v in reference.state_dict().items() if k != "num_batches_tracked"})
    x = torch.randn(2, 6, 5, 7, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(frozen.double()(x), reference.double()(x))
    assert not list(frozen.parameters())  # nothing trains, whatever the optimizer is given


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_layout_loads_key_by_key(tmp_path: Path, name: str) -> None:
    source = layout_state_dict(name)
    torch.save(source, tmp_path / f"{name}.pth")
    model = FastRCNN(default_config(name, 3))
    loaded = load_torchvision_weights(model, tmp_path / f"{name}.pth")
    skipped = set(loaded.skipped)
    classifier = ("fc.", "classifier.")
    assert skipped == {k for k in source if k.startswith(classifier) or k.endswith("num_batches_tracked")}
    assert len(loaded.loaded) + len(skipped) == len(source)
    state = model.state_dict()
    for key, value in source.items():
        if key in skipped:
            continue
        torch.testing.assert_close(state[our_key(name, key)], value, rtol=0, atol=0, msg=key)


def test_a_file_that_does_not_fit_is_refused_with_every_mismatch(tmp_path: Path) -> None:
    source = layout_state_dict("resnet18")
    del source["layer2.0.conv1.weight"]
    source["layer4.1.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    source["layer5.0.conv1.weight"] = torch.zeros(3)
    torch.save(source, tmp_path / "bad.pth")
    with pytest.raises(DataError) as caught:
        load_torchvision_weights(FastRCNN(default_config("resnet18", 2)), tmp_path / "bad.pth")
    line = str(caught.value)
    assert "bad.pth" in line and "does not fit backbone resnet18" in line
    assert "missing key layer2.0.conv1.weight" in line
    assert "layer4.1.conv2.weight: shape (512, 512, 1, 1) in the file, (512, 512, 3, 3)" in line
    assert "unexpected key layer5.0.conv1.weight" in line
    # A ResNet-50 file for a ResNet-18 model: refused, not half loaded.
    torch.save(layout_state_dict("resnet50"), tmp_path / "r50.pth")
    model = FastRCNN(default_config("resnet18", 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DataError, match="does not fit backbone resnet18"):
        load_torchvision_weights(model, tmp_path / "r50.pth")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_what_does_not_apply_is_refused_in_one_line() -> None:
    from rcnn_cli.inference.truncated_svd import compress_layers, fraction_ranks

    with pytest.raises(RcnnError, match="resnet50 has no fc7 for R-CNN's and SPPnet's SVMs"):
        default_config("resnet50", 2, method="rcnn")
    with pytest.raises(RcnnError, match="its head stage takes a square RoI grid"):
        default_config("resnet18", 2, pool="spp")
    head = FastRCNN(default_config("resnet18", 2)).head
    for call in (lambda: fraction_ranks(head), lambda: compress_layers(head, {"fc6": 8})):
        with pytest.raises(RcnnError, match="truncated SVD factorizes fc6 and fc7, and this model has none"):
            call()


def test_the_recorded_layout_says_where_it_came_from() -> None:
    assert LAYOUTS["torchvision"].startswith("0.29") and set(NAMES) <= set(LAYOUTS["models"])
    assert LAYOUTS["models"]["resnet50"]["layer4.2.conv3.weight"] == [2048, 512, 1, 1]


#: SGD steps and learning rate per backbone: ResNet-50 fits the minibatch in fewer steps, at 4x the
#: time per step; MobileNetV3 takes a smaller lr (at 0.001 its loss grows to NaN within 8 steps).
STEPS = {"resnet18": 40, "resnet50": 20, "mobilenet_v3_large": 40}
LR = {"resnet18": 0.01, "resnet50": 0.01, "mobilenet_v3_large": 1e-4}


def give_batchnorms_their_inputs_statistics(model: FastRCNN, image: torch.Tensor, rois: torch.Tensor) -> None:
    """Set every frozen BatchNorm's mean and variance to those of its input on ``image`` (one forward
    pass, in order, so each sees inputs already normalized above it), as ImageNet weights come with
    statistics that fit them.

    MobileNetV3 needs this to learn at all: with BatchNorm frozen at the identity, hard-swish halves
    its small activations block after block and the head sees almost nothing (the loss moves by ~1e-3
    a step, from scratch it is for --weights only: docs/BENCHMARKS.md)."""

    def calibrate(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        module.running_mean.copy_(inputs[0].mean((0, 2, 3)))
        module.running_var.copy_(inputs[0].var((0, 2, 3)))

    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    hooks = [m.register_forward_pre_hook(calibrate) for m in norms]
    with torch.no_grad():
        model(image[None], rois)
    for hook in hooks:
        hook.remove()


@pytest.mark.parametrize("name", NAMES)
def test_training_steps_fit_a_synthetic_minibatch(tmp_path: Path, name: str) -> None:
    """One minibatch of a synthetic-shapes image (its gt boxes, jittered copies of them, background
    boxes), up to 40 SGD steps of the multi-task loss through the frozen-BN trunk and the head stage
    (res5; MobileNet's features 13-16): the loss falls to under half, the head stage and the predictors
    move, the frozen layers (ResNet's conv1 and res2, MobileNet's features 0-3) do not. (A 14×14 grid is the
    default; 6×6 here keeps res5 cheap on a CPU. From scratch on 80 such images, 150 iterations of rcnn
    train reached VOC mAP 0.25 with ResNet-18, against ~0 untrained: docs/BENCHMARKS.md.)"""
    from rcnn_cli.data import make_synthetic_voc, open_dataset, read_record
    from rcnn_cli.models.preprocess import prepare_image
    from rcnn_cli.training.targets import encode_targets

    make_synthetic_voc(tmp_path / "voc", 4, seed=3, image_size=(128, 96), min_size=24)
    record = next(r for r in open_dataset(tmp_path / "voc").records if len(r.boxes) >= 2)
    config = default_config(name, 3, output_size=6, scales=(96,), max_size=128)
    torch.manual_seed(0)
    model = FastRCNN(config).train()
    model.backbone.freeze_below(model.backbone.spec.frozen_below)
    image, scale = prepare_image(read_record(record), 96, 128, config.pixel_mean, config.pixel_std)
    gt = torch.as_tensor(record.boxes, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    jitter = gt.repeat(3, 1) + torch.randn(3 * len(gt), 4, generator=generator) * 2
    background = torch.tensor([[0.0, 0, 8, 8], [120, 88, 128, 96], [0, 88, 8, 96], [120, 0, 128, 8]])
    boxes = torch.cat([gt, jitter, background])
    labels = torch.cat(
        [torch.as_tensor(record.labels).repeat(4), torch.zeros(len(background), dtype=torch.int64)]
    )
    matched = torch.cat([gt.repeat(4, 1), background])
    targets = encode_targets(boxes, matched) / 0.1  # ~ the paper's target std of 0.1
    rois = torch.cat([torch.zeros(len(boxes), 1), boxes * scale], dim=1)
    if name == "mobilenet_v3_large":
        give_batchnorms_their_inputs_statistics(model, image, rois)
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = {n: p.clone() for n, p in model.backbone.named_parameters() if not p.requires_grad}
    stage_before = next(model.head.stage.parameters()).clone()
    optimizer = torch.optim.SGD(trainable, lr=LR[name], momentum=0.9)
    losses = []
    for _ in range(STEPS[name]):
        logits, deltas = model(image[None], rois)
        loss = model.head.loss(logits, deltas, labels, targets).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(name, [round(v, 3) for v in losses])
    assert losses[-1] < 0.5 * losses[0], losses
    assert frozen and all(
        torch.equal(p, frozen[n]) for n, p in model.backbone.named_parameters() if n in frozen
    )
    assert not torch.equal(next(model.head.stage.parameters()), stage_before)
