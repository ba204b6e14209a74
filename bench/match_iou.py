"""How tight the detections are, as a number that does not jump at IoU 0.75 the way AP75 does.

For each ground-truth box of a VOC split, the best-scored detection of its class in its image that
overlaps it at IoU >= 0.5 (the one VOC matching would take): its IoU and its width and height relative
to the box. Prints the mean and median IoU, the share at IoU >= 0.75 and the median size ratios.

    python bench/match_iou.py --dataset DATA --split test --detections DETS/detections.json
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from rcnn_cli.boxes import box_iou
from rcnn_cli.data.voc import load_voc
from rcnn_cli.evaluation.coco_format import read_coco_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--detections", required=True, help="COCO results JSON (rcnn detect's)")
    args = parser.parse_args()
    dataset = load_voc(args.dataset, args.split)
    by_image: dict[tuple[str, int], list[tuple[float, list[float]]]] = defaultdict(list)
    for d in read_coco_results(args.detections):
        x, y, w, h = d["bbox"]
        by_image[(str(d["image_id"]), int(d["category_id"]))].append((d["score"], [x, y, x + w, y + h]))
    ious, widths, heights, missed = [], [], [], 0
    for record in dataset.records:
        for gt, label in zip(record.boxes, record.labels, strict=True):
            candidates = sorted(by_image[(record.image_id, int(label))], key=lambda c: -c[0])
            boxes = torch.tensor([box for _, box in candidates], dtype=torch.float64).reshape(-1, 4)
            overlaps = box_iou(torch.as_tensor(gt, dtype=torch.float64)[None], boxes)[0]  # [C], by score
            hits = torch.nonzero(overlaps >= 0.5).flatten()
            if not len(hits):
                missed += 1
                continue
            first = int(hits[0])
            match = boxes[first].numpy()
            ious.append(float(overlaps[first]))
            widths.append((match[2] - match[0]) / (gt[2] - gt[0]))
            heights.append((match[3] - match[1]) / (gt[3] - gt[1]))
    found = np.array(ious)
    if not len(found):
        raise SystemExit(f"{args.detections}: no detection overlaps any of the {missed} boxes at IoU >= 0.5")
    print(
        f"{len(found) + missed} boxes, {len(found)} matched: IoU mean {found.mean():.3f}, "
        f"median {np.median(found):.3f}, {np.mean(found >= 0.75):.0%} at >= 0.75; "
        f"width x{np.median(widths):.3f}, height x{np.median(heights):.3f} (medians)"
    )


if __name__ == "__main__":
    main()
