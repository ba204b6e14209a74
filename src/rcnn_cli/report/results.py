"""The measured version of the R-CNN family's table, read back from what ``rcnn compare``'s steps left on
disk (``REPORT/runs/``): per method its training stages and time, the disk its intermediate artifacts
took, its test time per image by stage, its AP (VOC07, VOC area, COCO) overall and per class; the
ratios between methods beside the papers' figures; precision–recall curves per class and proposal
recall against IoU. Nothing here trains or detects: it reads files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rcnn_cli.artifacts import folder_bytes

#: Display names, in the family's historical order (also the report's row order).
NAMES = {"rcnn": "R-CNN", "sppnet": "SPPnet", "fast": "Fast R-CNN", "faster": "Faster R-CNN"}
ORDER = ("rcnn", "sppnet", "fast", "faster")

#: The papers' figures the measured ratios stand beside (VGG16 on a K40 GPU; Fast R-CNN Table 4,
#: Faster R-CNN Table 5: Selective Search ~1.5 s per image on a CPU, the RPN ~10 ms on a GPU).
PAPER_RATIOS = {
    "fast_vs_rcnn_test": 146.0,  # Fast R-CNN test time vs R-CNN's (47 s -> 0.32 s), without SVD
    "fast_vs_rcnn_train": 9.0,  # training time, 84 h -> 9.5 h
    "fast_vs_sppnet_test": 7.0,  # 2.3 s -> 0.32 s
    "ss_vs_rpn_proposals": 150.0,  # ~1.5 s of Selective Search vs ~10 ms of RPN proposals
}

#: Test-time stages of ``rcnn detect --timing`` grouped as the report shows them.
STAGE_GROUPS = {
    "proposals": ("proposals", "rpn", "proposal_layer"),
    "conv": ("read", "preprocess", "conv"),
    "region features": ("warp", "roi_pool"),
    "head": ("fc6", "fc7", "head", "svm", "bbox_regression"),
    "nms": ("nms",),
}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def step_seconds(runs: Path, name: str) -> float | None:
    marker = _read_json(runs / "steps" / f"{name}.json")
    return None if marker is None else float(marker["seconds"])


def training_stages(method: str, meta: dict[str, Any], train_seconds: float | None) -> list[dict[str, Any]]:
    """The method's training stages, each with its seconds where measured: R-CNN/SPPnet from their
    model's ``stage_seconds``; Fast R-CNN's and Faster R-CNN's one training run from compare's timer."""
    if method in ("rcnn", "sppnet"):
        seconds = meta.get("stage_seconds") or {}
        return [{"name": name, "seconds": seconds.get(name)} for name in meta.get("stages") or seconds]
    name = "joint training (RPN + detector)" if method == "faster" else "multi-task training"
    return [{"name": name, "seconds": train_seconds}]


def stage_ms_per_image(timing: dict[str, Any], proposal_seconds: float) -> dict[str, float]:
    """ms per image of each stage group (:data:`STAGE_GROUPS`); ``proposal_seconds`` per image is added
    to "proposals" for methods that read them from a folder (Selective Search, timed by compare)."""
    images = max(int(timing.get("images", 0)), 1)
    seconds = timing.get("seconds", {})
    out = {
        group: 1000.0 * sum(float(seconds.get(part, 0.0)) for part in parts) / images
        for group, parts in STAGE_GROUPS.items()
    }
    out["proposals"] += 1000.0 * proposal_seconds
    return out


def pr_curves(
    records: Sequence[Any], detections: list[dict[str, Any]], num_classes: int
) -> list[dict[str, list[float]]]:
    """Per class k = 1..K the VOC precision–recall curve at IoU 0.5 (recall, precision lists, thinned
    to at most 200 points) of COCO-style ``detections`` against ``records``' ground truth."""
    from rcnn_cli.evaluation.coco_format import results_to_detections
    from rcnn_cli.evaluation.voc_ap import match_detections, pr_curve

    dets = results_to_detections(detections, records, num_classes)
    curves = []
    for k in range(1, num_classes + 1):
        gt = []
        for r in records:
            labels = np.asarray(r.labels).reshape(-1)
            gt.append(
                (
                    np.asarray(r.boxes).reshape(-1, 4)[labels == k],
                    np.asarray(r.difficult).reshape(-1)[labels == k],
                )
            )
        positives = int(sum((~d).sum() for _, d in gt))
        mine = np.asarray(dets.labels) == k
        tp, fp, _ = match_detections(
            np.asarray(dets.image_index)[mine],
            np.asarray(dets.scores)[mine],
            np.asarray(dets.boxes)[mine],
            gt,
        )
        recall, precision = pr_curve(tp, fp, positives)
        keep = (
            np.unique(np.linspace(0, len(recall) - 1, min(len(recall), 200)).astype(int))
            if len(recall)
            else []
        )
        curves.append(
            {"recall": recall[keep].round(4).tolist(), "precision": precision[keep].round(4).tolist()}
        )
    return curves


def proposal_recall(records: Sequence[Any], folder: Path) -> dict[str, Any] | None:
    """Recall against IoU 0.5:0.95 of the proposals in ``folder`` on ``records``' gt (None: no folder)."""
    if not (folder / "manifest.json").is_file():
        return None
    from rcnn_cli.evaluation.recall_iou import IOU_THRESHOLDS, recall_vs_iou
    from rcnn_cli.training.proposals_io import load_proposals

    boxes = load_proposals(folder, records)
    kept = [r for r in records if r.image_id in boxes]
    recall = recall_vs_iou(  # VOC "difficult" boxes are not counted, as in the AP
        [boxes[r.image_id].numpy() for r in kept],
        [np.asarray(r.boxes).reshape(-1, 4)[~np.asarray(r.difficult, bool).reshape(-1)] for r in kept],
    )
    counts = [len(boxes[r.image_id]) for r in kept]
    return {
        "iou": [float(t) for t in IOU_THRESHOLDS],
        "recall": np.asarray(recall).round(4).tolist(),
        "boxes_per_image": float(np.mean(counts)) if counts else 0.0,
    }


def method_row(
    method: str, runs: Path, records: Sequence[Any], class_names: Sequence[str], ss_seconds: float
) -> dict[str, Any] | None:
    """Everything the report shows of one method, or None when it has not finished its steps."""
    from rcnn_cli.artifacts import read_torch_file

    folder = runs / method
    evaluation = _read_json(folder / "evaluation.json")
    timing = _read_json(folder / "detections" / "timing.json")
    model_path = folder / "train" / "model.pt"
    if evaluation is None or timing is None or not model_path.is_file():
        return None
    meta = read_torch_file(model_path, "model checkpoint").get("meta", {})
    train_seconds = step_seconds(runs, f"{method}-train")
    reads_proposals = method != "faster"
    stages = stage_ms_per_image(timing, ss_seconds if reads_proposals else 0.0)
    disk = {}
    if reads_proposals:
        disk["proposals (shared)"] = folder_bytes(runs / "proposals")
    for name in ("0-conv-features", "2-region-features"):
        if (folder / "train" / name).is_dir():
            disk[name] = folder_bytes(folder / "train" / name)
    detections = _read_json(folder / "detections" / "detections.json") or []
    mean = evaluation["mean"]
    return {
        "method": method,
        "name": NAMES[method],
        "training_stages": training_stages(method, meta, train_seconds),
        "train_seconds": train_seconds,
        "disk_bytes": disk,
        "test_ms_per_image": {**stages, "total": sum(stages.values())},
        "voc07_map": mean.get("voc07_ap"),
        "voc_map": mean.get("voc_ap"),
        "coco_ap": mean.get("coco_ap"),
        "coco_ap50": mean.get("coco_ap50"),
        "coco_ap75": mean.get("coco_ap75"),
        "per_class_ap": {row["class"]: row.get("voc_ap") for row in evaluation["classes"]},
        "pr_curves": dict(zip(class_names, pr_curves(records, detections, len(class_names)), strict=True)),
        "detections": str((folder / "detections").relative_to(runs.parent)),
    }


def ratios(rows: dict[str, dict[str, Any]], ss_seconds: float) -> list[dict[str, Any]]:
    """The measured ratios between methods that the papers give, each beside the paper's figure."""

    def ratio(slow: str, fast: str, key: str) -> float | None:
        if slow in rows and fast in rows:
            a = rows[slow][key] if key != "test" else rows[slow]["test_ms_per_image"]["total"]
            b = rows[fast][key] if key != "test" else rows[fast]["test_ms_per_image"]["total"]
            return None if not a or not b else float(a) / float(b)
        return None

    out = [
        ("Fast R-CNN vs R-CNN, test time", ratio("rcnn", "fast", "test"), PAPER_RATIOS["fast_vs_rcnn_test"]),
        (
            "Fast R-CNN vs R-CNN, training time",
            ratio("rcnn", "fast", "train_seconds"),
            PAPER_RATIOS["fast_vs_rcnn_train"],
        ),
        (
            "Fast R-CNN vs SPPnet, test time",
            ratio("sppnet", "fast", "test"),
            PAPER_RATIOS["fast_vs_sppnet_test"],
        ),
    ]
    if "faster" in rows:
        rpn = rows["faster"]["test_ms_per_image"]["proposals"]
        measured = 1000.0 * ss_seconds / rpn if rpn > 0 and ss_seconds > 0 else None
        out.append(("Selective Search vs RPN, proposal time", measured, PAPER_RATIOS["ss_vs_rpn_proposals"]))
    return [{"what": what, "measured": m, "paper": p} for what, m, p in out if m is not None]


def gather(report: Path) -> dict[str, Any]:
    """results.json's content for the comparison in ``report`` (rows for the methods that finished)."""
    from rcnn_cli.data import open_dataset

    settings = _read_json(report / "compare.json")
    runs = report / "runs"
    dataset = open_dataset(settings["dataset"], split=settings["split_test"])
    records, class_names = dataset.records, list(dataset.class_names)
    propose_s = step_seconds(runs, f"proposals-{settings['split_test']}") or 0.0
    ss_seconds = propose_s / max(len(records), 1)
    rows = {}
    for method in ORDER:
        if method in settings["methods"]:
            row = method_row(method, runs, records, class_names, ss_seconds)
            if row is not None:
                rows[method] = row
    recall = {"Selective Search": proposal_recall(records, runs / "proposals" / settings["split_test"])}
    if "faster" in rows:
        recall["RPN"] = proposal_recall(records, runs / "faster" / "rpn-proposals")
    return {
        "kind": "rcnn_compare",
        "settings": settings,
        "class_names": class_names,
        "test_images": len(records),
        "selective_search_s_per_image": ss_seconds,
        "methods": [rows[m] for m in ORDER if m in rows],
        "missing": [m for m in settings["methods"] if m not in rows],
        "ratios": ratios(rows, ss_seconds),
        "proposal_recall": {k: v for k, v in recall.items() if v is not None},
    }
