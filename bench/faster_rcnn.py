"""Time per image: Selective Search + Fast R-CNN against Faster R-CNN (its RPN on the shared conv map).

For each image, in this one process and interleaved (so that a busy machine slows all of them alike):
our Selective Search (fast mode, 2000 boxes), the Fast R-CNN detector on those boxes, and the Faster
R-CNN detector with its own RPN (the model's test-time proposal layer: 300 by default). Both detectors
go through ``rcnn_cli.inference.detect.Detector`` as ``rcnn detect`` does; the RPN's share is its
"rpn" and "proposal_layer" stages. The first ``--warmup`` images are not counted. Prints ms per image
per stage and the ratios the Faster R-CNN paper reports (proposal time, whole detection time).

    OMP_NUM_THREADS=1 python bench/faster_rcnn.py --voc /work/shared/data/bccd --split test \\
        --fast-model runs/ss/model.pt --faster-model runs/faster/model.pt
"""

from __future__ import annotations

import argparse
import time

import torch

from rcnn_cli.data import open_dataset, read_record
from rcnn_cli.inference.detect import DetectConfig, Detector
from rcnn_cli.models import load_checkpoint
from rcnn_cli.proposals.selective_search import SelectiveSearch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voc", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--fast-model", required=True, help="Fast R-CNN model.pt (trained on SS proposals)")
    parser.add_argument("--faster-model", required=True, help="Faster R-CNN model.pt (rcnn train --rpn)")
    parser.add_argument("--limit", type=int, default=0, help="First N images (0: all)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-proposals", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    records = open_dataset(args.voc, args.split).records
    records = records[: args.limit] if args.limit else records
    search = SelectiveSearch(mode="fast", max_proposals=args.max_proposals)
    detectors = {}
    for name, path in (("fast", args.fast_model), ("faster", args.faster_model)):
        model, meta = load_checkpoint(path)
        detectors[name] = Detector(model, meta["class_names"], DetectConfig(max_proposals=args.max_proposals))
    ss_seconds = 0.0
    counted = 0
    for n, record in enumerate(records):
        rgb = read_record(record)
        if n == args.warmup:  # start counting: forget the warm-up images' stage times
            for detector in detectors.values():
                detector.timer.seconds = dict.fromkeys(detector.timer.seconds, 0.0)
                detector.timer.images = 0
        start = time.perf_counter()
        boxes = search.propose(rgb, record).boxes
        seconds = time.perf_counter() - start
        detectors["fast"].detect(rgb, boxes)
        detectors["faster"].detect(rgb, None)
        if n >= args.warmup:
            ss_seconds += seconds
            counted += 1
    if counted == 0:
        raise SystemExit("no image counted: give more images than --warmup")

    ms = {name: {k: 1000 * v / counted for k, v in d.timer.seconds.items()} for name, d in detectors.items()}
    ss_ms = 1000 * ss_seconds / counted
    skip = ("read", "proposals")
    fast_ms = sum(v for k, v in ms["fast"].items() if k not in skip)
    faster_ms = sum(v for k, v in ms["faster"].items() if k not in skip)
    rpn_ms = ms["faster"]["rpn"] + ms["faster"]["proposal_layer"]
    print(f"{counted} images of {args.voc} ({args.split}), {args.threads} thread(s), ms per image")
    stages = [k for k in ms["fast"] if k not in skip and (ms["fast"][k] > 0 or ms["faster"][k] > 0)]
    print(f"{'stage':16s} {'SS + Fast R-CNN':>16s} {'Faster R-CNN':>14s}")
    print(f"{'proposals':16s} {ss_ms:16.1f} {rpn_ms:14.1f}   (SS / RPN head + proposal layer)")
    for stage in stages:
        print(f"{stage:16s} {ms['fast'][stage]:16.1f} {ms['faster'][stage]:14.1f}")
    print(f"{'whole':16s} {ss_ms + fast_ms:16.1f} {faster_ms:14.1f}")
    print(f"proposals: RPN {ss_ms / rpn_ms:.1f}x faster than Selective Search")
    print(f"whole detection: Faster R-CNN {(ss_ms + fast_ms) / faster_ms:.1f}x faster than SS + Fast R-CNN")


if __name__ == "__main__":
    main()
