"""R-CNN and SPPnet trained whole (rcnn_cli.training.region_schedule) on the synthetic shapes: each
stage leaves its folder, the models detect the shapes, and a run killed in the SVM stage goes on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rcnn_cli.data import make_synthetic_voc, open_dataset
from rcnn_cli.inference.model_map import checkpoint_voc_map
from rcnn_cli.models import load_checkpoint
from rcnn_cli.proposals.jitter import write_jittered_proposals
from rcnn_cli.training import region_classifiers
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.proposals_io import load_proposals
from rcnn_cli.training.region_schedule import STAGES, train_region_method
from rcnn_cli.training.sampling import SamplerConfig
from rcnn_cli.training.setup import RunSpec, build_trainer


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def shapes_40(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("region_methods")
    make_synthetic_voc(root / "voc", 40, seed=1, image_size=(128, 96), min_size=20)
    write_jittered_proposals(root / "props", open_dataset(root / "voc").records, num_random=80)
    return root


def region_spec(root: Path, out: str, method: str, **changes) -> RunSpec:
    return RunSpec(
        dataset=str(root / "voc"),
        split="trainval",
        proposals=str(root / "props"),
        out_dir=str(root / out),
        backbone="small",  # the lighter CPU net: the methods, not the backbone, are under test
        fc_dims=(128, 128),
        method=method,
        **changes,
    )


def finetune_config(iters: int, bg_lo: float) -> TrainConfig:
    return TrainConfig(
        iters=iters,
        lr=0.01,
        lr_steps=(max(1, int(iters * 0.75)),),
        warmup_iters=min(10, iters),
        sampling=SamplerConfig(rois_per_batch=128, bg_threshold_lo=bg_lo),
        checkpoint_every=0,
    )


def test_mean_ap(root: Path, model: Path) -> float:
    test = open_dataset(root / "voc", "test")
    return checkpoint_voc_map(model, test.records, load_proposals(root / "props", test.records))


test_mean_ap.__test__ = False  # a helper, not a test


@pytest.mark.slow
def test_rcnn_stages_on_disk_and_detects_shapes(shapes_40: Path) -> None:
    model_path = train_region_method(
        region_spec(shapes_40, "rcnn", "rcnn"), finetune_config(200, 0.0), "cpu", 0, quiet
    )
    run = shapes_40 / "rcnn"
    for stage in STAGES["rcnn"]:
        assert (run / stage).is_dir(), stage
    assert (run / "2-region-features" / "manifest.json").is_file()
    assert sorted(p.name for p in (run / "3-svm").glob("class-*.npz")) == [
        "class-01.npz",
        "class-02.npz",
        "class-03.npz",
    ]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows if "/" not in r["stage"]] == list(STAGES["rcnn"])
    assert all(r["seconds"] > 0 for r in rows)
    assert rows[1]["disk_bytes"] > 0
    model, meta = load_checkpoint(model_path)
    assert meta["method"] == "rcnn" and model.config.method == "rcnn"
    assert model.svm_weight.abs().sum() > 0 and model.bbox_weight.abs().sum() > 0
    assert set(meta["stage_seconds"]) == set(STAGES["rcnn"])
    ap = test_mean_ap(shapes_40, model_path)
    # Measured (deterministic): after 1 fine-tuning iteration the SVMs and regressors on the barely
    # trained features already reach 0.41 (these shapes are easy to tell apart); after 100, 0.66 once,
    # but 0.48 in a fresh environment of 2026-12 (scikit-learn 1.9.1, numpy 2.4.6; the same with the
    # RoI kernels before and after that day's changes, which R-CNN does not use), too close to 0.41;
    # after these 200, 0.58. 0.5 tells fine-tuning from none.
    print("R-CNN synthetic mAP", ap)
    assert ap >= 0.5, ap


@pytest.mark.slow
def test_sppnet_on_fixed_conv_layers_detects_shapes(shapes_40: Path) -> None:
    # SPPnet keeps the conv layers fixed: they come from a short Fast R-CNN run (the stand-in for
    # ImageNet weights, which cannot be downloaded here).
    conv = region_spec(shapes_40, "conv", "fast_rcnn", scales=(192,), max_size=400)
    build_trainer(conv, finetune_config(150, 0.1), "cpu", log=quiet).fit()
    spec = region_spec(
        shapes_40,
        "sppnet",
        "sppnet",
        scales=(192,),
        max_size=400,
        init_from=((str(shapes_40 / "conv" / "model.pt"), ("backbone",)),),
    )
    model_path = train_region_method(spec, finetune_config(100, 0.1), "cpu", 0, quiet)
    run = shapes_40 / "sppnet"
    assert (run / "0-conv-features" / "manifest.json").is_file()
    model, _ = load_checkpoint(model_path)
    assert model.config.method == "sppnet" and model.config.pool == "spp"
    conv_model, _ = load_checkpoint(shapes_40 / "conv" / "model.pt")
    for name, value in conv_model.backbone.state_dict().items():  # the conv layers stayed fixed
        assert (model.backbone.state_dict()[name] == value).all(), name
    ap = test_mean_ap(shapes_40, model_path)
    # Measured: 0.73 (one thread). The fixed conv layers are a 150-iteration Fast R-CNN's.
    print("SPPnet synthetic mAP", ap)
    assert ap >= 0.6, ap


def test_sppnet_refuses_untrained_conv_layers(shapes_40: Path) -> None:
    with pytest.raises(Exception, match=r"--weights FILE.*--init-from MODEL"):
        train_region_method(
            region_spec(shapes_40, "spp-bare", "sppnet"), finetune_config(2, 0.1), "cpu", 0, quiet
        )


@pytest.mark.slow
def test_a_run_killed_in_the_svm_stage_goes_on_class_by_class(shapes_40: Path, monkeypatch) -> None:
    spec = region_spec(shapes_40, "killed", "rcnn")
    config = finetune_config(5, 0.0)
    real = region_classifiers.hard_negative_mining
    trained: list[int] = []

    def dies_on_the_second_class(positives, sets, svm_config):
        if len(trained) == 1:
            raise KeyboardInterrupt  # kill -INT in the middle of the stage
        trained.append(len(trained) + 1)
        return real(positives, sets, svm_config)

    monkeypatch.setattr(region_classifiers, "hard_negative_mining", dies_on_the_second_class)
    with pytest.raises(KeyboardInterrupt):
        train_region_method(spec, config, "cpu", 0, quiet)
    svm = shapes_40 / "killed" / "3-svm"
    assert [p.name for p in svm.glob("class-*.npz")] == ["class-01.npz"]
    first = (svm / "class-01.npz").read_bytes()
    assert not (shapes_40 / "killed" / "model.pt").exists()

    resumed: list[int] = []

    def counting(positives, sets, svm_config):
        resumed.append(1)
        return real(positives, sets, svm_config)

    monkeypatch.setattr(region_classifiers, "hard_negative_mining", counting)
    from dataclasses import replace

    with pytest.raises(Exception, match=r"--resume"):  # a run is there: not silently continued
        train_region_method(spec, config, "cpu", 0, quiet)
    train_region_method(replace(spec, resume=True), config, "cpu", 0, quiet)
    assert len(resumed) == 2  # classes 2 and 3 only
    assert (svm / "class-01.npz").read_bytes() == first
    model, _ = load_checkpoint(shapes_40 / "killed" / "model.pt")
    with np.load(svm / "class-01.npz") as data:
        np.testing.assert_allclose(model.svm_weight[0].numpy(), data["weight"], rtol=1e-6)
