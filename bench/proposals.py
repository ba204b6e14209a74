"""Selective Search side by side: ours, OpenCV-contrib (and the ``selectivesearch`` pip package).

All methods run on the same images in this one process, single-threaded, interleaved image by
image, and are scored against the dataset's ground truth (recall@0.5, recall@0.7, ABO, MABO,
boxes/img, s/img). OpenCV-contrib is used when ``cv2.ximgproc`` is importable; the project
depends on the plain headless OpenCV, so run this from ``.venv-peers`` (``make peers``, where the
contrib build takes its place; bench/README.md).

Image size changes what Selective Search finds (its segmentation threshold k is a region size
in pixels), so every image is also resized to each ``--sizes`` shorter side (the ground-truth
boxes scaled with it) and each size bucket gets its own table, with ours' time as a share of
OpenCV's. Ours is also shown capped, per image, at the number of boxes OpenCV gave for that
image, so that quality is compared at no more boxes per image. OpenCV is capped at ``--max-proposals``
as ours is (its first boxes, as ``rcnn propose --method opencv`` keeps them).

    python bench/proposals.py --voc /work/shared/data/bccd --split test --limit 25 \
        --sizes 200 350 500 720 --before --demo /work/shared/data/fastrcnn_demo
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from rcnn_cli.data import load_images, load_voc, read_image
from rcnn_cli.evaluation.proposal_recall import best_overlaps, evaluate_proposals
from rcnn_cli.proposals import SelectiveSearch, SelectivesearchPackage
from rcnn_cli.proposals.files import FileProposals
from rcnn_cli.proposals.strategies import PAPER_FAST_KS

OURS = "ours fast"
BEFORE = "ours fast before #16 (k 50,100; exact dedup)"
OPENCV = "opencv-contrib fast"
CAPPED = ", capped at opencv's count"


@dataclass
class Bucket:
    """Everything one size bucket collects: per method, per image, boxes and seconds."""

    boxes: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    gt: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)


def resize_to_short_side(
    image: np.ndarray, gt_boxes: np.ndarray, short_side: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` uint8 [H, W, 3] with its shorter side made ``short_side`` (None: as it is), and the
    ground-truth boxes float [G, 4] xyxy scaled the same way."""
    if short_side is None:
        return image, gt_boxes
    height, width = image.shape[:2]
    factor = short_side / min(height, width)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    # INTER_AREA for shrinking (no aliasing), INTER_LINEAR for enlarging.
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    out = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    scale = np.array([new_w / width, new_h / height] * 2, dtype=np.float32)
    return out, np.asarray(gt_boxes, dtype=np.float32) * scale


def _timed(method, image: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    p = method.propose(image, None)
    return p.boxes, time.perf_counter() - start


def collect(records, methods: dict, sizes: list[int | None]) -> dict[int | None, Bucket]:
    """Run every method on every record at every size, interleaved so that load on the
    machine hits all methods alike."""
    warm = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    for method in methods.values():
        method.propose(warm, None)  # first calls load kernels and libraries: not part of any timing
    buckets = {size: Bucket({n: [] for n in methods}, {n: [] for n in methods}) for size in sizes}
    for record in records:
        original = read_image(record.path)
        keep = ~record.difficult
        for size in sizes:
            image, gt = resize_to_short_side(original, record.boxes[keep], size)
            bucket = buckets[size]
            bucket.gt.append((gt, record.labels[keep]))
            bucket.shapes.append(image.shape[:2])
            for name, method in methods.items():
                b, s = _timed(method, image)
                bucket.boxes[name].append(b)
                bucket.seconds[name].append(s)
    for bucket in buckets.values():
        if OPENCV in bucket.boxes:
            for name in [n for n in (OURS, BEFORE) if n in bucket.boxes]:
                bucket.boxes[name + CAPPED] = [
                    ours[: len(cv)] for ours, cv in zip(bucket.boxes[name], bucket.boxes[OPENCV], strict=True)
                ]
                bucket.seconds[name + CAPPED] = bucket.seconds[name]
    return buckets


def report(label: str, bucket: Bucket, with_gt: bool = True) -> None:
    """One bucket's table (plain text and the markdown row format of docs/BENCHMARKS.md)."""
    h = np.array([s[0] for s in bucket.shapes])
    w = np.array([s[1] for s in bucket.shapes])
    print(f"\n{label}: {len(h)} images, {w.min()}-{w.max()} x {h.min()}-{h.max()} px", end="")
    print(f", {sum(len(g) for g, _ in bucket.gt)} ground-truth boxes" if with_gt else "")
    print(f"| {'method':70s} | boxes/img | R@0.5 | R@0.7 |   ABO |  MABO |  s/img |")
    print(f"|{'-' * 72}|-----------|-------|-------|-------|-------|--------|")
    for name, per_image in bucket.boxes.items():
        s_img = float(np.mean(bucket.seconds[name]))
        n = float(np.mean([len(b) for b in per_image]))
        if with_gt:
            q = evaluate_proposals((b, g, lab) for b, (g, lab) in zip(per_image, bucket.gt, strict=True))
            cells = f"{q.recall_50:.3f} | {q.recall_70:.3f} | {q.abo:.3f} | {q.mabo:.3f}"
        else:
            cells = "    - |     - |     - |     -"
        print(f"| {name:70s} | {n:9.0f} | {cells} | {s_img:6.3f} |")
    for mine in [n for n in (OURS, BEFORE) if n in bucket.seconds]:
        ours = float(np.mean(bucket.seconds[mine]))
        for name in bucket.seconds:
            if name not in (OURS, BEFORE) and not name.endswith(CAPPED):
                ratio = ours / float(np.mean(bucket.seconds[name]))
                print(f"time: {mine} takes {ratio:.2f}x the time of {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voc", type=Path, help="VOC-layout dataset with ground truth")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=25, help="first N images of the split")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[200, 350, 500, 720],
        help="shorter sides to resize every image to, one table each; 0 = the original size",
    )
    parser.add_argument("--demo", type=Path, help="folder with Fast R-CNN demo images and *_boxes.mat")
    parser.add_argument("--package", action="store_true", help="also run the selectivesearch pip package")
    parser.add_argument(
        "--before", action="store_true", help="also run ours as --mode fast was before issue 16 (k = 50, 100)"
    )
    parser.add_argument("--max-proposals", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    warnings.filterwarnings("ignore", category=UserWarning)  # skimage, from the selectivesearch package

    methods: dict = {OURS: SelectiveSearch(mode="fast", max_proposals=args.max_proposals)}
    if args.before:
        # What --mode fast was before issue 16: the paper's two k, only exact duplicates dropped.
        methods[BEFORE] = SelectiveSearch(
            mode="fast", max_proposals=args.max_proposals, ks=PAPER_FAST_KS, near_duplicate_iou=None
        )
    if args.package:
        methods["selectivesearch 0.4 (500, 0.9, 10)"] = SelectivesearchPackage(max_proposals=0)
    if hasattr(cv2, "ximgproc"):
        from rcnn_cli.proposals.external import OpenCVSelectiveSearch

        # At the same cap as ours: what `rcnn propose --method opencv` gives.
        methods[OPENCV] = OpenCVSelectiveSearch(mode="fast", max_proposals=args.max_proposals)
        print(f"OpenCV {cv2.__version__} with contrib")
    else:
        print("cv2.ximgproc not importable: OpenCV-contrib skipped")
    sizes = [s or None for s in args.sizes] or [None]
    if args.voc:
        records = load_voc(args.voc, args.split).records[: args.limit]
        print(f"\n{args.voc} {args.split}: {len(records)} images")
        for size, bucket in collect(records, methods, sizes).items():
            report(f"shorter side {size}" if size else "original size", bucket)
    if args.demo:
        records = load_images(sorted(args.demo.glob("*.jpg"))).records
        bucket = collect(records, methods, [None])[None]
        report(f"{args.demo}", bucket, with_gt=False)
        # Agreement with the proposals released with Fast R-CNN (no ground truth for these images).
        released = FileProposals(str(args.demo), max_proposals=0)
        for name, per_image in bucket.boxes.items():
            cover = [
                (best_overlaps(b, released.propose(None, r).boxes) >= 0.7).mean()
                for b, r in zip(per_image, records, strict=True)
            ]
            print(f"{name}: covers {np.mean(cover):.3f} of the released Fast R-CNN boxes at IoU 0.7")


if __name__ == "__main__":
    main()
