"""Train the small backbone from scratch on the synthetic shapes and report mAP@0.5 on its test split.

Proposals are jittered ground truth + random boxes (rcnn_cli.proposals.jitter), written as a
proposals folder. Run:
    python bench/train_synthetic.py --images 120 --iters 800 --scale 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rcnn_cli.inference.model_map import checkpoint_voc_map
from rcnn_cli.proposals.jitter import write_jittered_proposals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--iters", type=int, default=800)
    parser.add_argument("--scale", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from rcnn_cli.data import make_synthetic_voc, open_dataset
    from rcnn_cli.training.config import TrainConfig
    from rcnn_cli.training.proposals_io import load_proposals
    from rcnn_cli.training.sampling import SamplerConfig
    from rcnn_cli.training.setup import RunSpec, build_trainer

    root = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    make_synthetic_voc(root / "voc", args.images, seed=0)
    write_jittered_proposals(root / "props", open_dataset(root / "voc").records)
    run = RunSpec(dataset=str(root / "voc"), split="trainval", proposals=str(root / "props"),
                  out_dir=str(root / "run"), scales=(args.scale,), max_size=2 * args.scale,
                  fc_dims=(256, 256))  # fmt: skip
    cfg = TrainConfig.for_backbone("small", iters=args.iters, lr=args.lr, warmup_iters=50,  # lr step: 75%
                                   sampling=SamplerConfig(rois_per_batch=64), checkpoint_every=0)  # fmt: skip
    start = time.perf_counter()
    build_trainer(run, cfg, torch.device("cpu")).fit()
    seconds = time.perf_counter() - start
    test = open_dataset(root / "voc", "test")
    proposals = load_proposals(root / "props", test.records)
    ap = checkpoint_voc_map(root / "run" / "model.pt", test.records, proposals)
    n = len(test.records)
    print(f"synthetic shapes: {args.iters} iters in {seconds:.0f} s, mAP@0.5 {ap:.3f} on {n} test images")


if __name__ == "__main__":
    main()
