"""The training loop: reproducible seeds, exact resume, folding at save, divergence, DDP on 2 processes."""

from __future__ import annotations

import json

import pytest
import torch

from rcnn_cli.boxes import BoxCoder
from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.models import load_checkpoint
from rcnn_cli.proposals.jitter import write_jittered_proposals
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.sampling import SamplerConfig
from rcnn_cli.training.setup import RunSpec, build_trainer
from support import training as train_helpers

TINY = dict(scales=(96,), max_size=200, fc_dims=(64, 64))


def spec(shapes, out, **kw) -> RunSpec:
    args = dict(
        dataset=str(shapes / "voc"), split="trainval", proposals=str(shapes / "proposals"), out_dir=str(out)
    )
    return RunSpec(**{**args, **TINY, **kw})


def config(**kw) -> TrainConfig:
    base = dict(
        iters=6, lr=0.01, lr_steps=(4,), sampling=SamplerConfig(rois_per_batch=16), checkpoint_every=3
    )
    return TrainConfig(**{**base, **kw})


def losses(history) -> list[tuple[float, float]]:
    return [(round(r["loss_cls"], 6), round(r["loss_loc"], 6)) for r in history]


def test_same_seed_same_losses_and_resume_is_exact(shapes, tmp_path) -> None:
    full = build_trainer(spec(shapes, tmp_path / "full"), config(), "cpu").fit()
    again = build_trainer(spec(shapes, tmp_path / "again"), config(), "cpu").fit()
    assert losses(again.history) == losses(full.history)
    assert full.history[-1]["lr"] == pytest.approx(0.001)  # stepped at iteration 4

    build_trainer(spec(shapes, tmp_path / "split"), config(iters=3), "cpu").fit()
    with pytest.raises(ArtifactError, match="--resume"):
        build_trainer(spec(shapes, tmp_path / "split"), config(), "cpu")
    resumed_trainer = build_trainer(spec(shapes, tmp_path / "split", resume=True), config(), "cpu")
    assert resumed_trainer.iteration == 3
    resumed = resumed_trainer.fit()
    assert losses(resumed.history) == losses(full.history)[3:]
    lines = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert losses(lines) == losses(full.history)
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=True)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    with pytest.raises(ArtifactError, match="lr"):
        build_trainer(spec(shapes, tmp_path / "split", resume=True), config(lr=0.5), "cpu")


def test_saved_model_gives_same_detections(shapes, tmp_path) -> None:
    trainer = build_trainer(spec(shapes, tmp_path / "run"), config(iters=4), "cpu")
    trainer.fit()
    model, norm = trainer.model.eval(), trainer.normalization
    entry = trainer.entries[0]
    image, im_scale = trainer.source.get(entry.record, 96, False)
    props = entry.candidates[:20]
    rois = torch.cat([torch.zeros(20, 1), props * im_scale], 1)
    with torch.no_grad():
        scores, normalized = model(image[None], rois)
    k1 = model.num_classes + 1
    raw = normalized.reshape(20, k1, 4) * norm.stds + norm.means
    boxes_before = BoxCoder((0, 0, 0, 0), (1, 1, 1, 1)).decode(raw.reshape(20, -1), props)
    loaded, meta = load_checkpoint(tmp_path / "run" / "model.pt")
    with torch.no_grad():
        scores2, deltas = loaded(image[None], rois)
    boxes_after = BoxCoder((0, 0, 0, 0), (1, 1, 1, 1)).decode(deltas, props)
    torch.testing.assert_close(scores2, scores)
    torch.testing.assert_close(boxes_after, boxes_before, atol=1e-3, rtol=1e-5)
    assert meta["class_names"] == ["circle", "square", "triangle"]
    assert not torch.allclose(norm.stds[1:], torch.tensor([0.1, 0.1, 0.2, 0.2]))  # empirical, not fixed


def test_divergence_names_iteration_and_images(shapes, tmp_path) -> None:
    with pytest.raises(RcnnError, match=r"diverged at iteration \d+: loss .* on images \d{6}"):
        build_trainer(
            spec(shapes, tmp_path / "nan"), config(lr=1e6, iters=30, explode_threshold=50), "cpu"
        ).fit()


def test_proposals_folder_checked_before_training(shapes, tmp_path) -> None:
    with pytest.raises(ArtifactError, match="no such folder"):
        build_trainer(spec(shapes, tmp_path / "r", proposals=str(tmp_path / "nope")), config(), "cpu")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "manifest.json").write_bytes((shapes / "proposals" / "manifest.json").read_bytes())
    for f in sorted((shapes / "proposals").glob("*.npz"))[:3]:
        (partial / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ArtifactError, match=r"partial proposals folder: \d+ of \d+ images"):
        build_trainer(spec(shapes, tmp_path / "r", proposals=str(partial)), config(), "cpu")
    # stale: a folder made for bigger images of the same names
    from rcnn_cli.data import open_dataset

    records = open_dataset(shapes / "voc").records
    import dataclasses

    big = [dataclasses.replace(r, width=r.width * 4, height=r.height * 4, boxes=r.boxes * 4) for r in records]
    write_jittered_proposals(tmp_path / "stale", big, num_random=80)
    with pytest.raises(ArtifactError, match="stale proposals"):
        build_trainer(spec(shapes, tmp_path / "r", proposals=str(tmp_path / "stale")), config(), "cpu")


def test_two_process_ddp_on_cpu(shapes, tmp_path) -> None:
    import torch.multiprocessing as mp

    args = (str(shapes), str(tmp_path), TINY)
    mp.spawn(train_helpers.ddp_worker, args=args, nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0["state"]:
        torch.testing.assert_close(r0["state"][k], r1["state"][k], rtol=0, atol=0)  # DDP kept them in sync
    for a, b in zip(r0["seen"], r1["seen"], strict=True):
        assert not set(a) & set(b)  # each rank trained on its own images
    assert (tmp_path / "ddp" / "model.pt").is_file()
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # rank 0 alone writes
