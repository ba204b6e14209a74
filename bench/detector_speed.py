"""Training and detection speed of Fast R-CNN at the paper's scale: VGG16 (random weights: only the time
is measured), images at 600 / 1000 px, N = 2 images × R = 128 RoIs per iteration, 2000 proposals per
image at test time, on the bundled BCCD sample.

Prints iterations per second (after ``--warmup`` iterations) and ms per image of detection, by stage.
``make gpu-check`` runs it with ``--device cuda``; on a CPU, ``--backbone small --iters 3`` checks the
script itself.

    python bench/detector_speed.py --device cuda --iters 40
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from rcnn_cli.data import open_dataset, read_record, sample_dataset_path
    from rcnn_cli.inference.detect import DetectConfig, Detector
    from rcnn_cli.models import load_checkpoint
    from rcnn_cli.proposals.jitter import write_jittered_proposals
    from rcnn_cli.training.config import TrainConfig
    from rcnn_cli.training.proposals_io import load_proposals
    from rcnn_cli.training.setup import RunSpec, build_trainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--scale", type=int, default=600)
    parser.add_argument("--max-size", type=int, default=1000)
    parser.add_argument("--proposals", type=int, default=2000, help="per image at test time")
    parser.add_argument("--images", type=int, default=20, help="images detected (of the sample's)")
    args = parser.parse_args()
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = open_dataset(sample_dataset_path())
        # Jittered gt boxes plus random boxes: the number of RoIs, not their quality, sets the time.
        write_jittered_proposals(root / "props", dataset.records, num_random=args.proposals)
        spec = RunSpec(
            dataset=str(sample_dataset_path()),
            split=None,
            proposals=str(root / "props"),
            out_dir=str(root / "run"),
            backbone=args.backbone,
            scales=(args.scale,),
            max_size=args.max_size,
        )
        config = TrainConfig.for_backbone(args.backbone, iters=args.warmup + args.iters, checkpoint_every=0)
        trainer = build_trainer(spec, config, device, log=lambda _m: None)
        trainer.model.train()
        for _ in range(args.warmup):
            trainer.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        for _ in range(args.iters):
            trainer.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        print(
            f"train: {args.backbone} at {args.scale}/{args.max_size}, N=2 x R=128: "
            f"{args.iters / seconds:.2f} it/s ({1000 * seconds / args.iters:.0f} ms/it) on {device}"
        )
        trainer.save_model(root / "model.pt")
        model, meta = load_checkpoint(root / "model.pt", device)
        detector = Detector(model, meta["class_names"], DetectConfig(max_proposals=args.proposals), device)
        boxes = load_proposals(root / "props", dataset.records)
        chosen = dataset.records[: args.images]
        images = [(read_record(r), np.asarray(boxes[r.image_id])) for r in chosen]
        detector.detect(*images[0])  # warm-up: kernels, allocator
        detector.timer.seconds = dict.fromkeys(detector.timer.seconds, 0.0)
        detector.timer.images = 0
        started = time.perf_counter()
        for rgb, proposals in images:
            detector.detect(rgb, proposals)
        seconds = time.perf_counter() - started
        stages = ", ".join(
            f"{row['stage']} {row['ms_per_image']:.1f}" for row in detector.timer.rows() if row["total_s"] > 0
        )
        print(
            f"detect: {1000 * seconds / len(images):.1f} ms/image over {len(images)} images, "
            f"{args.proposals} proposals each ({stages})"
        )


if __name__ == "__main__":
    main()
