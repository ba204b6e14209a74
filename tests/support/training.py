"""Test helpers: a proposals folder for a dataset, the mAP of a trained model, a DDP worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rcnn_cli.artifacts import Manifest, atomic_save_npz, write_manifest
from rcnn_cli.data import read_image
from rcnn_cli.evaluation.voc_ap import Detections, voc_evaluate
from rcnn_cli.inference.detect import DetectConfig, Detector
from rcnn_cli.models import load_checkpoint


def write_proposals(folder: Path, records, num_random: int = 150, seed: int = 0) -> Path:
    """Jittered copies of every gt box plus random boxes, as ``rcnn propose`` would lay them out."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        boxes = [np.zeros((0, 4), np.float32)]
        for b in r.boxes:
            w, h = b[2] - b[0], b[3] - b[1]
            jitter = rng.normal(0, 0.12, size=(30, 4)) * np.array([w, h, w, h])
            boxes.append((b + jitter).astype(np.float32))
        xy = rng.uniform(0, 1, size=(num_random, 2)) * [r.width, r.height]
        wh = rng.uniform(0.08, 0.6, size=(num_random, 2)) * [r.width, r.height]
        boxes.append(np.concatenate([xy, xy + wh], 1).astype(np.float32))
        all_boxes = np.concatenate(boxes)
        all_boxes[:, 0::2] = all_boxes[:, 0::2].clip(0, r.width)
        all_boxes[:, 1::2] = all_boxes[:, 1::2].clip(0, r.height)
        keep = (all_boxes[:, 2] - all_boxes[:, 0] > 2) & (all_boxes[:, 3] - all_boxes[:, 1] > 2)
        all_boxes = all_boxes[keep]
        atomic_save_npz(
            folder / f"{r.image_id}.npz", boxes=all_boxes, scores=np.zeros(len(all_boxes), np.float32)
        )
    write_manifest(folder, Manifest(kind="proposals", format_version=1, params={"method": "test-jitter"}))
    return folder


def synthetic_map(checkpoint: Path, records, proposals: dict) -> float:
    """VOC area mAP@0.5 of a saved model on ``records``, through the product's detector and VOC AP
    (both tested against hand computations in tests/inference and tests/evaluation)."""
    model, meta = load_checkpoint(checkpoint)
    detector = Detector(model, meta["class_names"], DetectConfig(), "cpu")
    per_image = [detector.detect(read_image(r.path), proposals[r.image_id].numpy()) for r in records]
    detections = Detections(
        image_index=np.concatenate([np.full(len(d), i) for i, d in enumerate(per_image)]),
        labels=torch.cat([d.labels for d in per_image]).numpy(),
        scores=torch.cat([d.scores for d in per_image]).numpy(),
        boxes=torch.cat([d.boxes for d in per_image]).numpy(),
    )
    return voc_evaluate(records, detections, len(meta["class_names"])).map_area


def ddp_worker(rank: int, shapes: str, tmp: str, tiny: dict) -> None:
    """One process of a 2-process gloo run (spawned by the DDP test)."""
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=os.environ.get("RCNN_TEST_PORT", "29533"),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from rcnn_cli.training import distributed
    from rcnn_cli.training.config import TrainConfig
    from rcnn_cli.training.sampling import SamplerConfig
    from rcnn_cli.training.setup import RunSpec, build_trainer

    run = RunSpec(
        dataset=f"{shapes}/voc",
        split="trainval",
        proposals=f"{shapes}/proposals",
        out_dir=f"{tmp}/ddp",
        **tiny,
    )
    cfg = TrainConfig(iters=3, lr=0.01, sampling=SamplerConfig(rois_per_batch=16), checkpoint_every=2)
    trainer = build_trainer(run, cfg, torch.device("cpu"))
    assert trainer.info.world_size == 2 and trainer.info.rank == rank
    result = trainer.fit()
    torch.save({"state": trainer.model.state_dict(), "seen": result.seen_images}, f"{tmp}/rank{rank}.pt")
    distributed.shutdown(trainer.info)
