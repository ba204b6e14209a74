"""Peer for side-by-side benchmarks: torchvision's Faster R-CNN (MobileNetV3-Large FPN) from scratch.

Runs in the peers' venv (``make peers``: torch 2.14.1, torchvision 0.29.1; bench/README.md); it does not
import rcnn_cli, and rcnn_cli never imports torchvision. It reads a PASCAL VOC folder with its own
minimal code, trains ``fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None)`` for a
wall-clock budget, saves the model, detects on a test split one image at a time (timed), and writes
``OUT/detections.json`` in the COCO results convention that ``rcnn evaluate --detections`` reads
(docs/FORMATS.md, "## detections"):

- ``image_id``: the VOC id (the line of ImageSets/Main/SPLIT.txt) as a string; ints only when every id
  of the split is a canonical decimal ("42", not "0042"), as rcnn_cli.evaluation.coco_format does.
- ``category_id``: 1..K, the index in the class list + 1. By default the class list is what rcnn_cli's
  VOC loader uses: the sorted names of every object in Annotations/*.xml (all splits), so ids agree
  with ``rcnn evaluate`` on the same folder. ``--classes`` overrides it (then it must be that same list
  for the evaluation to mean anything; a mismatch is reported).
- ``bbox``: [x1, y1, w, h] in continuous pixels of the EXIF-oriented image; a VOC box is read as
  [xmin - 1, ymin - 1, xmax, ymax], as rcnn_cli does, so training targets and ground truth agree.

Training recipe (from scratch, CPU, small batches): SGD momentum 0.9, weight decay 1e-4 (torchvision's
detection reference), lr 0.02 after a linear warm-up of 100 iterations from 0.001 x lr (rcnn_cli small's
warm-up; at ~0.35 it/s on one loaded core a 30-minute budget is only ~600 iterations), x0.1 once 75%
of the time budget has passed (the step fraction of rcnn_cli's recipes), gradient-norm clip 10 (a
from-scratch net with batch 2 at lr 0.02 can spike early), 2 images per batch, random horizontal flips,
difficult objects left out (the test ground truth keeps them; rcnn evaluate ignores them). Without
backbone weights torchvision trains every layer with ordinary BatchNorm (not frozen). Images are
resized to shorter side 400, longer side at most 700: the small rcnn_cli backbone's default scale, so
both see the same pixels. torchvision's other settings stay its own (anchors 32..512 on 3 FPN levels,
RPN score threshold 0.05, box NMS 0.5); only box_score_thresh (0.001) and box_detections_per_img (100)
are set so that AP sees the low-scoring tail. The timed detection is the model call alone: resize and
normalization, backbone, RPN, box head, NMS; the JPEG decode is not timed.

    OMP_NUM_THREADS=1 .venv-peers/bin/python bench/peer_torchvision.py --data /work/shared/data/bccd \\
        --split trainval --test-split test --time-limit 30 --threads 1 -o runs/peer_torchvision
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")


# ---------------------------------------------------------------- data (a minimal VOC reader)


def _text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


def split_ids(root: Path, split: str) -> list[str]:
    lines = (root / "ImageSets" / "Main" / f"{split}.txt").read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines if line.split()]


def all_class_names(root: Path) -> list[str]:
    """Every object name in Annotations/*.xml, sorted: rcnn_cli's default class list for a VOC folder."""
    names: set[str] = set()
    for xml_path in (root / "Annotations").glob("*.xml"):
        try:
            names.update(_text(o.find("name")) for o in ET.parse(xml_path).getroot().findall("object"))
        except (ET.ParseError, OSError):
            continue
    names.discard("")
    return sorted(names)


def image_finder(root: Path):
    """image_id, <filename> -> the image in JPEGImages (any case of the name, else ID.<image extension>)."""
    folder = root / "JPEGImages"
    by_lower = {p.name.lower(): p for p in sorted(folder.iterdir())} if folder.is_dir() else {}
    by_stem: dict[str, Path] = {}
    for path in by_lower.values():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            by_stem.setdefault(path.stem, path)

    def find(filename: str, image_id: str) -> Path | None:
        if filename and (folder / filename).is_file():
            return folder / filename
        return by_lower.get(filename.lower()) or by_stem.get(image_id)

    return find


def read_image(path: Path) -> torch.Tensor:
    """float [3, H, W] in 0..1, EXIF-oriented (as rcnn_cli reads it)."""
    with Image.open(path) as image:
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)


def load_split(root: Path, split: str, class_index: dict[str, int]) -> list[dict]:
    """One dict per image: id, path, boxes [N, 4] (continuous xyxy), labels [N], difficult [N]."""
    records = []
    find = image_finder(root)
    for image_id in split_ids(root, split):
        try:
            tree = ET.parse(root / "Annotations" / f"{image_id}.xml").getroot()
        except (ET.ParseError, OSError) as exc:
            print(f"skipped {image_id}: {exc}", file=sys.stderr)
            continue
        path = find(_text(tree.find("filename")), image_id)
        if path is None:
            print(f"skipped {image_id}: no image in {root / 'JPEGImages'}", file=sys.stderr)
            continue
        with Image.open(path) as image:
            width, height = ImageOps.exif_transpose(image).size
        boxes, labels, difficult = [], [], []
        for obj in tree.findall("object"):
            name = _text(obj.find("name"))
            box = obj.find("bndbox")
            try:
                xmin, ymin, xmax, ymax = (float(_text(box.find(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, ValueError):
                continue
            if name not in class_index or not all(map(math.isfinite, (xmin, ymin, xmax, ymax))):
                continue
            if xmax <= xmin or ymax <= ymin:  # a stray click, as rcnn_cli's reader calls it (zero area)
                continue
            x1, y1 = max(xmin - 1.0, 0.0), max(ymin - 1.0, 0.0)
            x2, y2 = min(xmax, float(width)), min(ymax, float(height))
            if x2 <= x1 or y2 <= y1:  # outside the image
                continue
            boxes.append((x1, y1, x2, y2))
            labels.append(class_index[name])
            difficult.append(_text(obj.find("difficult")) in ("1", "true", "True"))
        records.append(
            {
                "id": image_id,
                "path": path,
                "width": width,
                "height": height,
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.int64),
                "difficult": torch.tensor(difficult, dtype=torch.bool),
            }
        )
    return records


def coco_image_ids(image_ids: list[str]) -> dict[str, int | str]:
    """rcnn_cli's rule: all ints when every id is a canonical decimal, else the strings."""

    def canonical(i: str) -> bool:
        return i.isdigit() and i.isascii() and str(int(i)) == i

    if image_ids and all(canonical(i) for i in image_ids):
        return {i: int(i) for i in image_ids}
    return {i: i for i in image_ids}


# ---------------------------------------------------------------- training


def training_sample(record: dict, flip: bool) -> tuple[torch.Tensor, dict]:
    image = read_image(record["path"])
    keep = ~record["difficult"]
    boxes, labels = record["boxes"][keep].clone(), record["labels"][keep]
    if flip:
        image = image.flip(-1)
        width = image.shape[-1]
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    return image, {"boxes": boxes, "labels": labels}


def learning_rate(args: argparse.Namespace, iteration: int, elapsed_s: float) -> float:
    lr = args.lr
    if iteration < args.warmup:
        alpha = iteration / args.warmup
        lr *= args.warmup_factor * (1 - alpha) + alpha
    if elapsed_s >= args.lr_step_fraction * args.time_limit * 60:
        lr *= 0.1
    return lr


def train(model: torch.nn.Module, records: list[dict], args: argparse.Namespace, out: Path) -> dict:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    rng = random.Random(args.seed)
    model.train()
    order: list[int] = []
    window: list[dict[str, float]] = []
    iteration = 0
    budget_s = args.time_limit * 60
    log_path = out / "train_log.jsonl"
    log_path.write_text("")
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < budget_s:
        if len(order) < args.batch:
            extra = list(range(len(records)))
            rng.shuffle(extra)
            order += extra
        batch, order = order[: args.batch], order[args.batch :]
        samples = [training_sample(records[i], args.flip and rng.random() < 0.5) for i in batch]
        lr = learning_rate(args, iteration, elapsed)
        for group in optimizer.param_groups:
            group["lr"] = lr
        losses = model([s[0] for s in samples], [s[1] for s in samples])
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise SystemExit(f"iteration {iteration}: loss is {loss.item()} (lr {lr:g}); try a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(params, args.clip_grad)
        optimizer.step()
        iteration += 1
        elapsed = time.perf_counter() - start
        window.append({"loss": loss.item(), **{k: v.item() for k, v in losses.items()}})
        if iteration % args.log_every == 0 or elapsed >= budget_s:
            mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
            entry = {"iteration": iteration, "minutes": round(elapsed / 60, 3), "lr": lr}
            entry.update({k: round(v, 4) for k, v in mean.items()})
            with log_path.open("a") as f:
                f.write(json.dumps(entry) + "\n")
            parts = " ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in mean.items() if k != "loss")
            print(
                f"iter {iteration:6d} {elapsed / 60:6.2f} min  {iteration / elapsed:5.2f} it/s  lr {lr:.5f}  "
                f"loss {mean['loss']:.4f} ({parts})",
                flush=True,
            )
            window = []
    return {"iterations": iteration, "train_minutes": elapsed / 60}


# ---------------------------------------------------------------- detection


@torch.no_grad()
def detect(model: torch.nn.Module, records: list[dict], all_ids: list[str], warmup: int) -> tuple[list, dict]:
    model.eval()
    coco_ids = coco_image_ids(all_ids)
    results, seconds = [], []
    for record in records:
        image = read_image(record["path"])
        start = time.perf_counter()
        output = model([image])[0]
        seconds.append(time.perf_counter() - start)
        boxes = output["boxes"].double()
        xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
        for box, score, label in zip(xywh, output["scores"].tolist(), output["labels"].tolist(), strict=True):
            results.append(
                {
                    "image_id": coco_ids[record["id"]],
                    "category_id": int(label),
                    "bbox": [round(v, 2) for v in box],
                    "score": round(score, 5),
                }
            )
    timed = seconds[warmup:] if len(seconds) > warmup else seconds
    timing = {
        "images": len(seconds),
        "timed_images": len(timed),
        "seconds_per_image": sum(timed) / len(timed) if timed else float("nan"),
        "warmup_images": len(seconds) - len(timed),
    }
    return results, timing


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="PASCAL VOC-layout folder")
    p.add_argument("--split", default="trainval", help="training split [trainval]")
    p.add_argument("--test-split", default="test", help="detection split [test]")
    p.add_argument("--classes", default=None, help="comma-separated class list [all names in Annotations/]")
    p.add_argument("-o", "--output", type=Path, default=Path("runs/peer_torchvision"))
    p.add_argument("--time-limit", type=float, default=None, help="training wall-clock minutes")
    p.add_argument(
        "--detect-only",
        type=Path,
        default=None,
        help="skip training: detect (and time) with this script's model.pt from an earlier run",
    )
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads [1]")
    p.add_argument("--min-size", type=int, default=400, help="shorter side [400: rcnn_cli small's scale]")
    p.add_argument("--max-size", type=int, default=700, help="cap on the longer side [700]")
    p.add_argument("--batch", type=int, default=2, help="images per iteration [2]")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up iterations [100]")
    p.add_argument("--warmup-factor", type=float, default=0.001, help="warm-up starts at lr x this")
    p.add_argument("--lr-step-fraction", type=float, default=0.75, help="lr x0.1 after this share of time")
    p.add_argument("--clip-grad", type=float, default=10.0, help="gradient-norm clip (0: none) [10]")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no horizontal flips")
    p.add_argument("--log-every", type=int, default=20, help="print the mean loss every N iterations")
    p.add_argument("--score-thresh", type=float, default=0.001, help="box_score_thresh [0.001]")
    p.add_argument("--detections-per-img", type=int, default=100)
    p.add_argument("--limit-test", type=int, default=None, help="detect on the first N test images only")
    p.add_argument("--warmup-images", type=int, default=2, help="untimed detections first [2]")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if (args.time_limit is None) == (args.detect_only is None):
        p.error(
            "give --time-limit MINUTES to train, or --detect-only MODEL.pt to detect with a trained model"
        )
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    root, out = args.data, args.output
    out.mkdir(parents=True, exist_ok=True)

    ours = all_class_names(root)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else ours
    if classes != ours:
        print(
            f"note: classes {classes} differ from rcnn_cli's reading of {root} ({ours}); "
            "rcnn evaluate's category ids would not match",
            file=sys.stderr,
        )
    class_index = {name: k for k, name in enumerate(classes, start=1)}
    train_records = load_split(root, args.split, class_index)
    counts = {c: 0 for c in classes}
    for r in train_records:
        for label in r["labels"][~r["difficult"]].tolist():
            counts[classes[label - 1]] += 1
    print(f"train: {len(train_records)} images of {args.split}; boxes per class (no difficult): {counts}")

    model = fasterrcnn_mobilenet_v3_large_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=len(classes) + 1,
        min_size=args.min_size,
        max_size=args.max_size,
        box_score_thresh=args.score_thresh,
        box_detections_per_img=args.detections_per_img,
    )
    if args.detect_only is not None:
        saved = torch.load(args.detect_only, weights_only=True)
        if saved.get("classes") != classes:
            raise SystemExit(f"{args.detect_only}: trained on classes {saved.get('classes')}, not {classes}")
        model.load_state_dict(saved["model"])
        trained = {"iterations": 0, "train_minutes": 0.0}
        model_path = args.detect_only
    else:
        trained = train(model, train_records, args, out)
        model_path = out / "model.pt"
        torch.save(
            {
                "model": model.state_dict(),
                "classes": classes,
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            model_path,
        )

    all_test_ids = split_ids(root, args.test_split)
    test_records = load_split(root, args.test_split, class_index)
    if args.limit_test is not None:
        test_records = test_records[: args.limit_test]
    results, timing = detect(model, test_records, all_test_ids, args.warmup_images)
    results_path = out / "detections.json"
    results_path.write_text(json.dumps(results))
    summary = {
        "peer": "torchvision fasterrcnn_mobilenet_v3_large_fpn from scratch",
        "torch": torch.__version__,
        **trained,
        **timing,
        "detections": len(results),
        "results": str(results_path),
        "model": str(model_path),
        "classes": {k: name for k, name in enumerate(classes, start=1)},
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"peer torchvision: {trained['iterations']} iterations, {trained['train_minutes']:.2f} train min, "
        f"{timing['seconds_per_image']:.3f} s/image detection ({timing['timed_images']} timed of "
        f"{timing['images']}), results {results_path}"
    )


if __name__ == "__main__":
    main()
