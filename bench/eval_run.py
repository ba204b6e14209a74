"""mAP@0.5 of a trained model.pt on a VOC split, with a minimal detector (per-class NMS 0.3, score 0.05).

Used for the training figures in docs/BENCHMARKS.md until ``rcnn detect``/``rcnn evaluate`` land:
    python bench/eval_run.py --model runs/bccd/model.pt --dataset /work/shared/data/bccd --split test \
        --proposals /tmp/bccd_props
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def _helpers():
    spec = importlib.util.spec_from_file_location(
        "train_helpers", HERE.parent / "tests/training/train_helpers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--proposals", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from rcnn_cli.data import open_dataset
    from rcnn_cli.models import load_checkpoint
    from rcnn_cli.training.proposals_io import load_proposals

    helpers = _helpers()
    data = open_dataset(args.dataset, args.split)
    props = load_proposals(args.proposals, data.records, 2000)
    model, _meta = load_checkpoint(args.model)
    start = time.perf_counter()
    dets = helpers.detect(model, data.records, props)
    seconds = time.perf_counter() - start
    aps = [helpers.voc_map(dets, data.records, data.num_classes) for _ in [0]]
    per_class = []
    for k, name in enumerate(data.class_names, start=1):
        sub = [d for d in dets if d[1] == k]
        recs = data.records
        per_class.append(
            (
                name,
                helpers.voc_map(
                    [(i, 1, s, b) for i, _, s, b in sub],
                    [
                        type(r)(
                            r.image_id,
                            r.path,
                            r.width,
                            r.height,
                            r.boxes[r.labels == k],
                            r.labels[r.labels == k] * 0 + 1,
                            r.difficult[r.labels == k],
                        )
                        for r in recs
                    ],
                    1,
                ),
            )
        )
    print(
        f"images {len(data.records)}  mAP@0.5 {aps[0]:.4f}  "
        + "  ".join(f"{n} {ap:.4f}" for n, ap in per_class)
        + f"  ({seconds / len(data.records):.3f} s/img)"
    )


if __name__ == "__main__":
    main()
