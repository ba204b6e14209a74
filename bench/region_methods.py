"""Test time per image of R-CNN, SPPnet and Fast R-CNN on the same proposals (proposals apart).

For each image, in this one process and interleaved (so that a busy machine slows all of them alike),
each model detects on the image's proposals from one proposals folder, through
``rcnn_cli.inference.detect.Detector`` as ``rcnn detect`` does. The first ``--warmup`` images are not
counted. Prints ms per image per stage for each method and the test-time ratios the papers report
(Fast R-CNN 146x faster than R-CNN with VGG16 and 2000 proposals; SPPnet 24-102x).

    OMP_NUM_THREADS=1 python bench/region_methods.py --voc /work/shared/data/bccd --split test \\
        --proposals ss/ --model rcnn=rcnn_run/model.pt --model sppnet=spp_run/model.pt \\
        --model fast-rcnn=fast15/model.pt --limit 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rcnn_cli.data import open_dataset, read_record
from rcnn_cli.inference.detect import DetectConfig, Detector
from rcnn_cli.models import load_checkpoint
from rcnn_cli.training.proposals_io import load_proposals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voc", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--proposals", required=True, help="proposals folder of the split's images")
    parser.add_argument("--model", action="append", required=True, help="LABEL=model.pt, repeatable")
    parser.add_argument("--limit", type=int, default=0, help="First N images (0: all)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-proposals", type=int, default=2000)
    parser.add_argument(
        "--vgg16-windows",
        type=int,
        default=0,
        help="Also estimate the paper's setting: VGG16 (random weights) at scale 600, R-CNN timed on "
        "this many warped 224x224 windows and scaled to --max-proposals, Fast R-CNN timed whole",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.vgg16_windows:
        vgg16_estimate(args)

    records = open_dataset(args.voc, args.split).records
    records = records[: args.limit] if args.limit else records
    proposals = load_proposals(args.proposals, records, args.max_proposals)
    detectors = {}
    for item in args.model:
        label, _, path = item.partition("=")
        model, meta = load_checkpoint(path)
        detectors[label] = Detector(
            model, meta["class_names"], DetectConfig(max_proposals=args.max_proposals)
        )
    seconds = {label: 0.0 for label in detectors}
    counted = 0
    for n, record in enumerate(records):
        rgb = read_record(record)
        boxes = np.asarray(proposals[record.image_id])
        if n == args.warmup:  # the stages timed from here on
            for detector in detectors.values():
                detector.timer.seconds = dict.fromkeys(detector.timer.seconds, 0.0)
                detector.timer.images = 0
        for label, detector in detectors.items():
            started = time.perf_counter()
            detector.detect(rgb, boxes)
            if n >= args.warmup:
                seconds[label] += time.perf_counter() - started
        counted += n >= args.warmup
    print(f"{counted} images, {args.threads} thread(s), up to {args.max_proposals} proposals each")
    for label, detector in detectors.items():
        stages = ", ".join(
            f"{row['stage']} {row['ms_per_image']:.1f}" for row in detector.timer.rows() if row["total_s"] > 0
        )
        print(f"{label:>10}: {1000 * seconds[label] / max(counted, 1):8.1f} ms/image  ({stages})")
    if "rcnn" in seconds:
        for label in seconds:
            if label != "rcnn" and seconds[label] > 0:
                print(f"R-CNN / {label}: {seconds['rcnn'] / seconds[label]:.1f}x the test time")


def vgg16_estimate(args: argparse.Namespace) -> None:
    """R-CNN against Fast R-CNN with VGG16 on the first image: the ratio the paper's 146x is of."""
    from rcnn_cli.models.fast_rcnn import default_config
    from rcnn_cli.models.faster_rcnn import build_model

    record = open_dataset(args.voc, args.split).records[0]
    rgb = read_record(record)
    boxes = np.asarray(load_proposals(args.proposals, [record], args.max_proposals)[record.image_id])
    rcnn = build_model(default_config("vgg16", 3, method="rcnn")).eval()
    fast = build_model(default_config("vgg16", 3)).eval()
    sample = boxes[: args.vgg16_windows]
    fast_detector = Detector(fast, ["a", "b", "c"], DetectConfig(max_proposals=args.max_proposals))
    rcnn_detector = Detector(rcnn, ["a", "b", "c"], DetectConfig(max_proposals=args.max_proposals))
    started = time.perf_counter()
    rcnn_detector.detect(rgb, sample)
    per_window = (time.perf_counter() - started) / len(sample)
    started = time.perf_counter()
    fast_detector.detect(rgb, boxes)
    fast_s = time.perf_counter() - started
    rcnn_s = per_window * len(boxes)
    print(
        f"VGG16, {len(boxes)} proposals, {args.threads} thread(s): R-CNN {rcnn_s:.0f} s/image "
        f"({1000 * per_window:.0f} ms per window, timed on {len(sample)}), Fast R-CNN {fast_s:.1f} s/image: "
        f"{rcnn_s / fast_s:.0f}x"
    )


if __name__ == "__main__":
    main()
