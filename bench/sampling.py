"""RoIs per second of training: hierarchical sampling (Fast R-CNN, N images x R/N RoIs) vs region-wise
sampling (R-CNN/SPPnet, R RoIs from R images), same model, same images, one process.

The paper (§2.3) expects about 64x for N = 2, R = 128: the conv layers run 2 times per minibatch
instead of 128. Run:
    python bench/sampling.py --images 130 --size 400x300 --backbone small --steps 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rcnn_cli.proposals.jitter import write_jittered_proposals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=130)
    parser.add_argument("--size", default="400x300", help="synthetic image WxH")
    parser.add_argument("--backbone", default="small")
    parser.add_argument(
        "--steps", type=int, default=2, help="timed minibatches per sampler (after 1 warm-up)"
    )
    parser.add_argument("-N", type=int, default=2)
    parser.add_argument("-R", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from rcnn_cli.data import make_synthetic_voc, open_dataset
    from rcnn_cli.training.config import TrainConfig
    from rcnn_cli.training.sampling import SamplerConfig
    from rcnn_cli.training.setup import RunSpec, build_trainer

    width, height = (int(v) for v in args.size.split("x"))
    root = Path(tempfile.mkdtemp(prefix="bench_sampling_"))
    make_synthetic_voc(root / "voc", args.images, seed=0, image_size=(width, height), test_fraction=0.0)
    records = open_dataset(root / "voc").records
    write_jittered_proposals(root / "props", records, num_random=300)
    rates = {}
    for sampler in ("hierarchical", "region"):
        run = RunSpec(dataset=str(root / "voc"), split=None, proposals=str(root / "props"),
                      out_dir=str(root / sampler), backbone=args.backbone, scales=(min(width, height),),
                      max_size=max(width, height))  # fmt: skip
        cfg = TrainConfig(iters=10**6, lr=0.001, sampler=sampler, checkpoint_every=0,
                          sampling=SamplerConfig(images_per_batch=args.N, rois_per_batch=args.R))  # fmt: skip
        trainer = build_trainer(run, cfg, torch.device("cpu"))
        trainer.model.train()
        trainer.train_step()  # warm-up
        start = time.perf_counter()
        rois = 0
        for _ in range(args.steps):
            row = trainer.train_step()
            rois += row["fg"] + row["bg"]
        seconds = time.perf_counter() - start
        rates[sampler] = rois / seconds
        per_step = seconds / args.steps
        print(f"{sampler:12s} {rois / args.steps:.0f} RoIs/minibatch  {per_step:.3f} s/minibatch  "
              f"{rates[sampler]:.1f} RoIs/s")  # fmt: skip
    print(f"hierarchical / region-wise = {rates['hierarchical'] / rates['region']:.1f}x "
          f"(N={args.N}, R={args.R}, {args.backbone}, {width}x{height}, {args.threads} thread)")  # fmt: skip


if __name__ == "__main__":
    main()
