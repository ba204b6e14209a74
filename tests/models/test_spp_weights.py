"""ImageNet weights (torchvision's VGG16 layout) with SPP pooling: the ImageNet fc6 takes 7x7 bins per
channel, the {6,3,2,1} pyramid gives 50, so the file's fc6 cannot be loaded: one line says so and what
to do (``--pool roi``, or ``--weights-fc skip`` for the conv layers alone)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.errors import DataError
from rcnn_cli.models.fast_rcnn import FastRCNN, default_config
from rcnn_cli.models.weights import load_torchvision_weights
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")

#: torchvision's vgg16: the output channels of its 13 conv layers ("M": a max pool, one index).
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: classifier.N: (in, out) of fc6, fc7 and the 1000-way ImageNet fc8.
VGG16_CLASSIFIER = {0: (512 * 7 * 7, 4096), 3: (4096, 4096), 6: (4096, 1000)}


def torchvision_vgg16_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values under torchvision VGG16's exact keys and shapes. The classifier's rows repeat one
    random row (an expanded tensor), so the file stays small: 102M distinct fc6 values are not needed."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    index, channels = 0, 3
    for layer in VGG16_LAYERS:
        if layer == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(layer, channels, 3, 3, generator=g) * 0.01
        state[f"features.{index}.bias"] = torch.randn(layer, generator=g) * 0.01
        index, channels = index + 2, layer  # conv, then its ReLU
    for n, (fan_in, fan_out) in VGG16_CLASSIFIER.items():
        state[f"classifier.{n}.weight"] = (torch.randn(fan_in, generator=g) * 0.01).expand(fan_out, fan_in)
        state[f"classifier.{n}.bias"] = torch.randn(fan_out, generator=g) * 0.01
    return state


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("weights") / "vgg16.pth"
    torch.save(torchvision_vgg16_state(), path)
    return str(path)


def test_the_layout_is_torchvisions_and_fits_roi_pooling(vgg16_file) -> None:
    state = torch.load(vgg16_file, weights_only=True)
    assert len(state) == 32 and state["features.28.weight"].shape == (512, 512, 3, 3)
    assert state["classifier.0.weight"].shape == (4096, 25088)
    model = FastRCNN(default_config("vgg16", 3, pool="roi"))
    loaded = load_torchvision_weights(model, vgg16_file)
    assert "fc6.weight" in loaded.loaded and len(loaded.loaded) == 30  # 26 conv + fc6 + fc7
    assert torch.equal(model.head.fc6.weight[:2], state["classifier.0.weight"][:2])


def test_spp_pooling_refuses_the_imagenet_fc6_in_one_line(vgg16_file, tmp_path) -> None:
    model = FastRCNN(default_config("vgg16", 3, pool="spp"))
    with pytest.raises(DataError) as err:
        load_torchvision_weights(model, vgg16_file)
    message = str(err.value)
    assert message == (
        f"{vgg16_file}: the ImageNet fc6 (classifier.0.weight) expects 7x7 = 49 bins per channel, 25088 "
        "inputs, but --pool spp's {6,3,2,1} pyramid gives 50 bins, 25600: use --pool roi to start from "
        "the ImageNet fc6, or --weights-fc skip to load only the conv layers and train fc6 and fc7 from "
        "scratch"
    )
    state = torch.load(vgg16_file, weights_only=True)
    state["classifier.3.weight"] = torch.zeros(10, 4096)
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(DataError) as err:  # with other mismatches, it comes first among them
        load_torchvision_weights(model, tmp_path / "odd.pth")
    assert str(err.value).startswith(f"{tmp_path / 'odd.pth'}: does not fit backbone vgg16 with pool spp: ")
    assert "the ImageNet fc6" in str(err.value) and "classifier.3.weight: shape (10, 4096)" in str(err.value)

    conv = model.backbone.features[0].weight.detach().clone()
    loaded = load_torchvision_weights(model, vgg16_file, load_fc=False)
    assert len(loaded.loaded) == 26 and not any(name.startswith("fc") for name in loaded.loaded)
    assert {"classifier.0.weight", "classifier.3.bias", "classifier.6.weight"} <= set(loaded.skipped)
    assert not torch.equal(model.backbone.features[0].weight, conv)  # the conv layers were loaded


def test_rcnn_train_says_why_and_weights_fc_skip_trains(vgg16_file, tmp_path) -> None:
    root = tiny_voc_with_proposals(tmp_path)
    base = ["-q", "--device", "cpu", "train", "--dataset", str(root / "voc"), "--split", "trainval",
            "--proposals", str(root / "props"), "--backbone", "vgg16", "--pool", "spp",
            "--weights", vgg16_file, "--scales", "96", "--max-size", "200"]  # fmt: skip
    refused = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "refused")])
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {vgg16_file}: the ImageNet fc6"), lines
    assert "25088" in lines[0] and "25600" in lines[0] and "--weights-fc skip" in lines[0]
    skip = ["--weights-fc", "skip", "--fc-dims", "32,32", "--iters", "1", "-R", "16"]
    trained = CliRunner().invoke(cli, [*base, *skip, "-o", str(tmp_path / "run"), "-v"])
    assert trained.exit_code == 0, trained.output
    assert f"loaded 26 tensors from {vgg16_file}" in trained.output  # the conv layers alone
    assert (tmp_path / "run" / "model.pt").is_file()
