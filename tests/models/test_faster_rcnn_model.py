"""The Faster R-CNN model and its checkpoint: kind, round trip, and starting from another model's parts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rcnn_cli.errors import ArtifactError
from rcnn_cli.models import load_checkpoint, save_checkpoint
from rcnn_cli.models.checkpoint import fold_bbox_normalization, load_parts, unfold_bbox_normalization
from rcnn_cli.models.fast_rcnn import FastRCNN, default_config
from rcnn_cli.models.faster_rcnn import FasterRCNN, build_model, with_rpn
from rcnn_cli.training.targets import TargetNormalization

META = {"class_names": ["a", "b"]}


def small_config(**kw):
    return default_config("small", 2, fc6_dim=16, fc7_dim=16, scales=(64,), max_size=100, **kw)


def test_checkpoint_round_trip_keeps_the_rpn(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model(with_rpn(small_config()))
    assert isinstance(model, FasterRCNN)
    save_checkpoint(tmp_path / "m.pt", model, META)
    saved = torch.load(tmp_path / "m.pt", weights_only=True)
    assert saved["kind"] == "faster_rcnn" and saved["config"]["rpn"]["mid_channels"] == 128
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert isinstance(loaded, FasterRCNN) and meta["config"] == model.config
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)


def test_a_kind_that_does_not_match_the_config_is_refused(tmp_path) -> None:
    save_checkpoint(tmp_path / "fast.pt", FastRCNN(small_config()), META)
    data = torch.load(tmp_path / "fast.pt", weights_only=True)
    data["kind"] = "faster_rcnn"
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(ArtifactError, match="does not match its config"):
        load_checkpoint(tmp_path / "bad.pt")


def test_unfold_inverts_fold() -> None:
    torch.manual_seed(0)
    state = {
        "bbox_pred.weight": torch.randn(12, 5, dtype=torch.float64),
        "bbox_pred.bias": torch.randn(12).double(),
    }
    means, stds = torch.randn(3, 4), torch.rand(3, 4) + 0.1
    back = unfold_bbox_normalization(fold_bbox_normalization(state, 2, means, stds), 2, means, stds)
    for key in state:
        torch.testing.assert_close(back[key], state[key], rtol=1e-12, atol=1e-12)


def test_load_parts_takes_only_the_named_parts(tmp_path) -> None:
    torch.manual_seed(0)
    source = build_model(with_rpn(small_config()))
    norm = TargetNormalization.fixed(2)
    save_checkpoint(tmp_path / "src.pt", source, META, norm.means, norm.stds)
    torch.manual_seed(1)
    target = build_model(with_rpn(small_config()))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    assert load_parts(target, tmp_path / "src.pt", norm, ("rpn",)) == ["rpn"]
    for key, value in target.state_dict().items():
        expected = source.state_dict()[key] if key.startswith("rpn.") else before[key]
        torch.testing.assert_close(value, expected, rtol=0, atol=0)
    # The head comes back with the normalization the file folded away: the same outputs as the source.
    assert load_parts(target, tmp_path / "src.pt", norm, ("head",)) == ["head"]
    torch.testing.assert_close(target.head.bbox_pred.weight, source.head.bbox_pred.weight)
    other = FastRCNN(dataclasses.replace(small_config(), fc6_dim=8))
    with pytest.raises(ArtifactError, match="shares no part"):
        load_parts(other, tmp_path / "src.pt", norm, ("head",))
