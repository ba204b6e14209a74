"""Test helper: a DDP worker. (Proposals for a dataset: rcnn_cli.proposals.jitter.write_jittered_proposals;
the mAP of a saved model: rcnn_cli.inference.model_map.checkpoint_voc_map.)"""

from __future__ import annotations

import torch


def _join_as(rank: int, default_port: str) -> None:
    """Make this process rank ``rank`` of 2 in the environment torchrun would give it, one thread."""
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=os.environ.get("RCNN_TEST_PORT", default_port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)


def ddp_worker(
    rank: int, shapes: str, tmp: str, tiny: dict, rpn: bool = False, budget_s: float | None = None
) -> None:
    """One process of a 2-process gloo run (spawned by the DDP tests); ``rpn``: Faster R-CNN's joint
    training instead of Fast R-CNN on the proposals folder; ``budget_s``: 40 iterations fitted into
    this budget (``--budget``) instead of 3."""
    _join_as(rank, default_port="29533")
    from rcnn_cli.training import distributed
    from rcnn_cli.training.config import TrainConfig
    from rcnn_cli.training.sampling import SamplerConfig
    from rcnn_cli.training.setup import RPNSpec, RunSpec, build_trainer

    run = RunSpec(
        dataset=f"{shapes}/voc",
        split="trainval",
        proposals=None if rpn else f"{shapes}/proposals",
        out_dir=f"{tmp}/ddp",
        rpn=RPNSpec(anchor_scales=(24.0, 48.0)) if rpn else None,
        **tiny,
    )
    stage = {"stage": "joint", "target_norm": "fixed"} if rpn else {}
    schedule = {"iters": 40, "lr_steps": (30,), "budget_s": budget_s} if budget_s else {"iters": 3}
    cfg = TrainConfig(
        lr=0.01, sampling=SamplerConfig(rois_per_batch=16), checkpoint_every=2, **schedule, **stage
    )
    trainer = build_trainer(run, cfg, torch.device("cpu"))
    assert trainer.info.world_size == 2 and trainer.info.rank == rank
    result = trainer.fit()
    saved = {
        "state": trainer.model.state_dict(),
        "seen": result.seen_images,
        "config": trainer.config.to_dict(),
    }
    torch.save(saved, f"{tmp}/rank{rank}.pt")
    distributed.shutdown(trainer.info)


def tiny_voc_with_proposals(root):  # type: ignore[no-untyped-def]
    """``root/voc`` (10 synthetic 128x96 images, VOC layout) and ``root/props`` (jittered ground-truth
    proposals for all of them): the data of the short CLI training runs. Returns ``root``."""
    from rcnn_cli.data import make_synthetic_voc, open_dataset
    from rcnn_cli.proposals.jitter import write_jittered_proposals

    make_synthetic_voc(root / "voc", 10, seed=2, image_size=(128, 96), min_size=20)
    write_jittered_proposals(root / "props", open_dataset(root / "voc").records, num_random=40)
    return root


def ddp_alternating_worker(rank: int, shapes: str, tmp: str, tiny: dict) -> None:
    """One process of a 2-process run of the 4-step alternating schedule (spawned by its DDP test)."""
    _join_as(rank, default_port="29547")
    from rcnn_cli.training.alternating import train_alternating
    from rcnn_cli.training.config import TrainConfig
    from rcnn_cli.training.sampling import SamplerConfig
    from rcnn_cli.training.setup import RPNSpec, RunSpec

    run = RunSpec(
        dataset=f"{shapes}/voc",
        split="trainval",
        proposals=None,
        out_dir=f"{tmp}/alt",
        rpn=RPNSpec(anchor_scales=(24.0, 48.0)),
        **tiny,
    )
    cfg = TrainConfig(
        iters=8,
        lr=0.01,
        lr_steps=(6,),
        sampling=SamplerConfig(rois_per_batch=16),
        checkpoint_every=0,
        stage="joint",
        target_norm="fixed",
    )
    final = train_alternating(run, cfg, torch.device("cpu"), verbosity=0, log=lambda _m: None)
    torch.save({"final": str(final)}, f"{tmp}/alt_rank{rank}.pt")
