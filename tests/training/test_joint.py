"""Faster R-CNN training (issue 12): approximate joint training and the RPN alone — exact resume,
frozen parts, what is refused, DDP on 2 processes, and that a short run learns on the shapes."""

from __future__ import annotations

import json

import pytest
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.models import load_checkpoint
from rcnn_cli.models.faster_rcnn import FasterRCNN
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.sampling import SamplerConfig
from rcnn_cli.training.setup import RPNSpec, RunSpec, build_trainer
from support import training as train_helpers

TINY = dict(scales=(96,), max_size=200, fc_dims=(32, 32))
ANCHORS = RPNSpec(anchor_scales=(24.0, 48.0))


def spec(shapes, out, **kw) -> RunSpec:
    args = dict(dataset=str(shapes / "voc"), split="trainval", proposals=None, out_dir=str(out), rpn=ANCHORS)
    return RunSpec(**{**args, **TINY, **kw})


def config(**kw) -> TrainConfig:
    base = dict(
        iters=6,
        lr=0.01,
        lr_steps=(4,),
        sampling=SamplerConfig(rois_per_batch=16),
        checkpoint_every=3,
        stage="joint",
        target_norm="fixed",
    )
    return TrainConfig(**{**base, **kw})


def losses(history) -> list[tuple[float, ...]]:
    keys = ("loss_cls", "loss_loc", "loss_rpn_cls", "loss_rpn_reg")
    return [tuple(round(r[k], 6) for k in keys) for r in history]


def test_joint_training_resume_is_exact(shapes, tmp_path) -> None:
    full = build_trainer(spec(shapes, tmp_path / "full"), config(), "cpu").fit()
    assert all(r["fg"] > 0 and 0 < r["rpn_accuracy"] <= 1 for r in full.history)
    build_trainer(spec(shapes, tmp_path / "split"), config(iters=3), "cpu").fit()
    resumed = build_trainer(spec(shapes, tmp_path / "split", resume=True), config(), "cpu")
    assert resumed.iteration == 3
    assert losses(resumed.fit().history) == losses(full.history)[3:]
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=True)
    assert a["kind"] == "faster_rcnn" and a["meta"]["stage"] == "joint"
    assert any(k.startswith("rpn.head.") for k in a["state_dict"])
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=0)
    rows = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in rows] == [1, 2, 3, 4, 5, 6]
    model, _meta = load_checkpoint(tmp_path / "full" / "model.pt")
    assert isinstance(model, FasterRCNN)
    assert model.rpn.config.anchors.scales == (24.0, 48.0)
    assert model.rpn.config.proposals.post_nms_top_n == 300  # the test-time layer is stored


def test_rpn_alone_leaves_the_head_untouched(shapes, tmp_path) -> None:
    trainer = build_trainer(spec(shapes, tmp_path / "rpn"), config(iters=2, stage="rpn"), "cpu")
    head_before = {k: v.clone() for k, v in trainer.model.head.state_dict().items()}
    rpn_before = {k: v.clone() for k, v in trainer.model.rpn.state_dict().items()}
    result = trainer.fit()
    assert all(r["fg"] + r["bg"] == 0 and "rpn_accuracy" in r for r in result.history)
    for k, v in trainer.model.head.state_dict().items():
        torch.testing.assert_close(v, head_before[k], rtol=0, atol=0)
    assert any(not torch.equal(v, rpn_before[k]) for k, v in trainer.model.rpn.state_dict().items())
    _model, meta = load_checkpoint(tmp_path / "rpn" / "model.pt")
    assert meta["stage"] == "rpn"


@pytest.mark.parametrize(
    "kw,cfg,message",
    [
        ({"proposals": "props"}, {}, "--rpn trains on the RPN's own proposals"),
        ({"features": "feats"}, {}, "cannot read --features"),
        ({"rpn": None}, {}, "needs the RPN's settings"),
        ({}, {"stage": "fast_rcnn", "target_norm": "empirical"}, "give --proposals FOLDER"),
        ({"frozen_parts": ("neck",)}, {}, "frozen parts must be among backbone, rpn, head"),
    ],
)
def test_inputs_that_do_not_fit_are_refused(shapes, tmp_path, kw, cfg, message) -> None:
    with pytest.raises(RcnnError, match=message):
        build_trainer(spec(shapes, tmp_path / "r", **kw), config(**cfg), "cpu")


def test_empirical_target_norm_is_refused_for_rpn_training() -> None:
    with pytest.raises(RcnnError, match="--target-norm empirical needs fixed proposals"):
        TrainConfig(stage="joint", target_norm="empirical")


def test_two_process_ddp_joint_training_on_cpu(shapes, tmp_path, monkeypatch) -> None:
    import torch.multiprocessing as mp

    monkeypatch.setenv("RCNN_TEST_PORT", "29541")
    mp.spawn(train_helpers.ddp_worker, args=(str(shapes), str(tmp_path), TINY, True), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert any(k.startswith("rpn.") for k in r0["state"])
    for k in r0["state"]:
        torch.testing.assert_close(r0["state"][k], r1["state"][k], rtol=0, atol=0)
    for a, b in zip(r0["seen"], r1["seen"], strict=True):
        assert not set(a) & set(b)
    rows = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all("loss_rpn_cls" in r for r in rows)


def test_two_process_alternating_schedule_on_cpu(shapes, tmp_path, monkeypatch) -> None:
    """Under torchrun every process trains each step and writes its share of the proposals."""
    import torch.multiprocessing as mp

    from rcnn_cli.data import open_dataset
    from rcnn_cli.proposals.storage import open_proposals

    monkeypatch.setenv("RCNN_TEST_PORT", "29547")
    mp.spawn(
        train_helpers.ddp_alternating_worker, args=(str(shapes), str(tmp_path), TINY), nprocs=2, join=True
    )
    out = tmp_path / "alt"
    ids = {r.image_id for r in open_dataset(shapes / "voc", "trainval").records}
    for folder in ("2-proposals", "4-proposals"):
        store, _manifest = open_proposals(out / folder)
        assert all(store.exists(i) for i in ids), folder  # both shards, one folder
    for step in ("1-rpn", "2-fast-rcnn", "3-rpn", "4-fast-rcnn"):
        assert len((out / step / "metrics.jsonl").read_text().splitlines()) == 2, step
    assert torch.load(out / "model.pt", weights_only=True)["kind"] == "faster_rcnn"


def test_joint_divergence_names_iteration_and_images(shapes, tmp_path) -> None:
    trainer = build_trainer(spec(shapes, tmp_path / "nan"), config(explode_threshold=1e-6), "cpu")
    with pytest.raises(RcnnError, match=r"training diverged at iteration 1: loss .* on images \d+"):
        trainer.fit()


def test_alternating_steps_share_the_time_left(monkeypatch) -> None:
    """--time-limit is one deadline: each step gets the time left over the steps left."""
    from rcnn_cli.training import alternating

    monkeypatch.setattr(alternating.time, "monotonic", lambda: 100.0)
    assert alternating._time_left(None, 1) is None
    assert alternating._time_left(500.0, 1) == pytest.approx(100.0)  # 400 s over 4 steps
    assert alternating._time_left(400.0, 3) == pytest.approx(150.0)  # 300 s over the last 2
    assert alternating._time_left(100.0, 4) == 1.0  # past the deadline: a second, to save the model
