"""Selective Search side by side: ours, the ``selectivesearch`` pip package, OpenCV-contrib.

All three run on the same images in this one process, single-threaded, and are scored
against the dataset's ground truth (recall@0.5, recall@0.7, ABO, MABO, boxes/img, s/img).
OpenCV-contrib is used when ``cv2.ximgproc`` is importable; the project depends on the
plain headless OpenCV, so run this from an environment where the contrib build shadows it
(see docs/BENCHMARKS.md ## proposals for the exact commands).

Ours is also shown capped, per image, at the number of boxes OpenCV gave for that image,
so that quality is compared at no more boxes per image.

    python bench/proposals.py --voc /work/shared/data/bccd --split test --limit 25 \
        --demo /work/shared/data/fastrcnn_demo
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from rcnn_cli.data import load_images, load_voc, read_image
from rcnn_cli.evaluation.proposal_recall import best_overlaps, evaluate_proposals
from rcnn_cli.proposals import SelectiveSearch, SelectivesearchPackage
from rcnn_cli.proposals.files import FileProposals


def _timed(method, image, record):
    start = time.perf_counter()
    p = method.propose(image, record)
    return p.boxes, time.perf_counter() - start


def run(records, with_gt: bool, methods: dict, demo_mat: Path | None = None) -> None:
    boxes = {name: [] for name in methods}
    seconds = {name: [] for name in methods}
    for record in records:
        image = read_image(record.path)
        for name, method in methods.items():
            b, s = _timed(method, image, record)
            boxes[name].append(b)
            seconds[name].append(s)
    rows = dict(boxes)
    if "opencv-contrib fast" in boxes:
        rows["ours fast, capped at opencv's count"] = [
            ours[: len(cv)] for ours, cv in zip(boxes["ours fast"], boxes["opencv-contrib fast"], strict=True)
        ]
        seconds["ours fast, capped at opencv's count"] = seconds["ours fast"]
    header = (
        f"{'method':38s} {'boxes/img':>9s} {'R@0.5':>6s} {'R@0.7':>6s} {'ABO':>6s} {'MABO':>6s} {'s/img':>7s}"
    )
    print(header)
    for name, per_image in rows.items():
        s_img = float(np.mean(seconds[name]))
        if with_gt:
            q = evaluate_proposals(
                (b, r.boxes[~r.difficult], r.labels[~r.difficult])
                for b, r in zip(per_image, records, strict=True)
            )
            print(
                f"{name:38s} {q.boxes_per_image:9.0f} {q.recall_50:6.3f} {q.recall_70:6.3f} "
                f"{q.abo:6.3f} {q.mabo:6.3f} {s_img:7.3f}"
            )
        else:
            n = np.mean([len(b) for b in per_image])
            print(f"{name:38s} {n:9.0f} {'-':>6s} {'-':>6s} {'-':>6s} {'-':>6s} {s_img:7.3f}")
    ours = float(np.mean(seconds["ours fast"]))
    for name in methods:
        if name != "ours fast":
            print(f"speed: ours fast is {np.mean(seconds[name]) / ours:.2f}x faster than {name}")
    if demo_mat is not None:
        # Agreement with the proposals released with Fast R-CNN (no ground truth for these images).
        released = FileProposals(str(demo_mat), max_proposals=0)
        for name in rows:
            cover = [
                (best_overlaps(b, released.propose(None, r).boxes) >= 0.7).mean()
                for b, r in zip(rows[name], records, strict=True)
            ]
            print(f"{name}: covers {np.mean(cover):.3f} of the released Fast R-CNN boxes at IoU 0.7")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voc", type=Path, help="VOC-layout dataset with ground truth")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=25, help="first N images of the split")
    parser.add_argument("--demo", type=Path, help="folder with Fast R-CNN demo images and *_boxes.mat")
    parser.add_argument("--max-proposals", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    warnings.filterwarnings("ignore", category=UserWarning)  # skimage, from the selectivesearch package

    methods: dict = {
        "ours fast": SelectiveSearch(mode="fast", max_proposals=args.max_proposals),
        "selectivesearch 0.4 (500, 0.9, 10)": SelectivesearchPackage(max_proposals=0),
    }
    if hasattr(cv2, "ximgproc"):
        from rcnn_cli.proposals.external import OpenCVSelectiveSearch

        methods["opencv-contrib fast"] = OpenCVSelectiveSearch(mode="fast", max_proposals=0)
        print(f"OpenCV {cv2.__version__} with contrib")
    else:
        print("cv2.ximgproc not importable: OpenCV-contrib skipped")
    if args.voc:
        records = load_voc(args.voc, args.split).records[: args.limit]
        print(f"\n{args.voc} {args.split}: {len(records)} images")
        run(records, True, methods)
    if args.demo:
        records = load_images(sorted(args.demo.glob("*.jpg"))).records
        print(f"\n{args.demo}: {len(records)} images")
        run(records, False, methods, demo_mat=args.demo)


if __name__ == "__main__":
    main()
