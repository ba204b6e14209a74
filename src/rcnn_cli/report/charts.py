"""The report's pictures, drawn with matplotlib from :func:`rcnn_cli.report.results.gather`'s dict:
accuracy against test time, where the time goes (test and training), precision–recall per class,
proposal recall against IoU, and every method's detections on the same test images.

Each function writes one PNG atomically and returns its path; the methods keep one colour throughout.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.transforms import Bbox

from rcnn_cli.pictures.figure import (
    LABEL_SIZE,
    SMALL_SIZE,
    TITLE_SIZE,
    draw_boxes,
    new_figure,
    save_png,
    show_image,
)

#: One colour per method (colour-blind safe, Okabe-Ito), and per test-time stage.
METHOD_COLOURS = {"rcnn": "#D55E00", "sppnet": "#CC79A7", "fast": "#0072B2", "faster": "#009E73"}
STAGE_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#999999", "#CC79A7")

#: The detections drawn: those scoring at least this (the 0.05 of evaluation makes a picture unreadable).
DRAW_THRESHOLD = 0.5


def accuracy_vs_time(results: dict[str, Any], path: Path) -> Path:
    """VOC07 mAP against test time per image (log scale), one point per method."""
    figure = new_figure(7.5, 4.8)
    axes = figure.add_subplot()
    for row in results["methods"]:
        x, y = row["test_ms_per_image"]["total"], row["voc07_map"] or 0.0
        axes.scatter([x], [y], s=140, color=METHOD_COLOURS[row["method"]], zorder=3, label=row["name"])
    axes.set_xscale("log")
    axes.set_xlabel("test time per image (ms, log scale; proposals included)", fontsize=LABEL_SIZE)
    axes.set_ylabel("VOC07 mAP (%)", fontsize=LABEL_SIZE)
    axes.set_title("Accuracy against test time", fontsize=TITLE_SIZE)
    axes.grid(True, which="both", alpha=0.3)
    _pad_limits(axes, results)
    _label_points(figure, axes, results["methods"])
    return save_png(figure, path)


# Where a point's name may go, in points from the point, tried in turn: methods with close time
# and mAP (SPPnet and Fast R-CNN often are) would otherwise write their names over each other.
LABEL_OFFSETS = (
    (9, 6, "left", "bottom"),
    (9, -6, "left", "top"),
    (-9, 6, "right", "bottom"),
    (-9, -6, "right", "top"),
    (0, 14, "center", "bottom"),
    (0, -14, "center", "top"),
)


def _label_points(figure: Any, axes: Any, rows: list[dict[str, Any]]) -> None:
    """Each method's name beside its point, at the first of :data:`LABEL_OFFSETS` where it covers
    no name already placed and no other point (measured on the drawn figure), else at the first
    offset. Points are labelled from the highest mAP down, so that of two close points the upper
    name goes above and the lower one below."""
    renderer = figure.canvas.get_renderer()
    radius = renderer.points_to_pixels(7.0)  # the markers are 140 pt² (~12 pt across), and a margin
    points = {id(row): (row["test_ms_per_image"]["total"], row["voc07_map"] or 0.0) for row in rows}
    markers = {
        key: Bbox.from_extents(px - radius, py - radius, px + radius, py + radius)
        for key, (px, py) in ((k, axes.transData.transform(xy)) for k, xy in points.items())
    }
    placed: list[Any] = []
    for row in sorted(rows, key=lambda r: -(r["voc07_map"] or 0.0)):
        obstacles = placed + [box for key, box in markers.items() if key != id(row)]

        def draw(offset: tuple[int, int, str, str], row: dict[str, Any] = row) -> Any:
            dx, dy, ha, va = offset
            return axes.annotate(
                row["name"],
                points[id(row)],
                textcoords="offset points",
                xytext=(dx, dy),
                ha=ha,
                va=va,
                fontsize=SMALL_SIZE,
            )

        for offset in LABEL_OFFSETS:
            text = draw(offset)
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in obstacles):
                break
            text.remove()
        else:
            text = draw(LABEL_OFFSETS[0])  # nowhere free: the usual place
            box = text.get_window_extent(renderer)
        placed.append(box)


def _pad_limits(axes: Any, results: dict[str, Any]) -> None:
    """Room around the points for their labels (a log axis a factor 2 wider each side)."""
    xs = [r["test_ms_per_image"]["total"] for r in results["methods"]] or [1.0]
    ys = [r["voc07_map"] or 0.0 for r in results["methods"]] or [0.0]
    axes.set_xlim(max(min(xs), 1e-3) / 2, max(xs) * 3)
    axes.set_ylim(max(0.0, min(ys) - 10), min(100.0, max(ys) + 10))


def stage_times(results: dict[str, Any], path: Path) -> Path:
    """Two panels of stacked bars per method: test time per image by stage, training time by stage."""
    rows = results["methods"]
    figure = new_figure(11, 1.2 + 0.9 * max(len(rows), 1) * 2)
    test_axes, train_axes = figure.subplots(2, 1)
    names = [r["name"] for r in rows]
    y = np.arange(len(rows))
    stages = [s for s in ("proposals", "conv", "region features", "head", "nms")]
    left = np.zeros(len(rows))
    for colour, stage in zip(STAGE_COLOURS, stages, strict=False):
        widths = np.array([r["test_ms_per_image"][stage] for r in rows])
        test_axes.barh(y, widths, left=left, color=colour, label=stage, height=0.6)
        left += widths
    _finish_bars(test_axes, names, left, "{:,.0f} ms", "test time per image (ms)", "Where the test time goes")
    test_axes.legend(fontsize=SMALL_SIZE, ncols=5, loc="lower right", framealpha=0.9)

    left = np.zeros(len(rows))
    longest = max((len(r["training_stages"]) for r in rows), default=1)
    segments: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
    for index in range(longest):
        widths, labels = [], []
        for r in rows:
            stages_r = r["training_stages"]
            stage = stages_r[index] if index < len(stages_r) else None
            widths.append(float(stage["seconds"] or 0.0) / 60 if stage else 0.0)
            labels.append(stage["name"] if stage else "")
        widths_a = np.array(widths)
        train_axes.barh(
            y,
            widths_a,
            left=left,
            color=STAGE_COLOURS[index % len(STAGE_COLOURS)],
            height=0.6,
            edgecolor="white",
        )
        segments.append((left.copy(), widths_a, labels))
        left += widths_a
    _finish_bars(
        train_axes,
        names,
        left,
        "{:.1f} min",
        "training time (minutes), stage by stage",
        "Where the training time goes",
    )
    _label_segments(figure, train_axes, y, segments)
    return save_png(figure, path)


def _label_segments(
    figure: Any, axes: Any, y: np.ndarray, segments: list[tuple[np.ndarray, np.ndarray, list[str]]]
) -> None:
    """Each training stage's name inside its bar segment where it fits (measured on the drawn
    figure, the axis limits set); the names that do not fit go in one line under their bar."""
    renderer = figure.canvas.get_renderer()
    left_out: dict[int, list[str]] = {}
    for lefts, widths, labels in segments:
        for row, (x0, w, label) in enumerate(zip(lefts, widths, labels, strict=True)):
            if w <= 0 or not label:
                continue
            name = re.sub(r"^\d+-", "", label)  # "2-region-features" -> "region-features"
            text = axes.text(x0 + w / 2, y[row], name, ha="center", va="center", fontsize=SMALL_SIZE - 1.5)
            inside = axes.transData.transform([(x0, 0), (x0 + w, 0)])
            if text.get_window_extent(renderer).width > (inside[1][0] - inside[0][0]) - 4:
                text.remove()
                left_out.setdefault(row, []).append(f"{name} {w:.1f}")
    for row, names in left_out.items():
        axes.text(
            0,
            y[row] + 0.42,
            "also: " + ", ".join(names) + " (min)",
            ha="left",
            va="center",
            fontsize=SMALL_SIZE - 2,
            color="0.3",
        )


def _finish_bars(
    axes: Any, names: list[str], totals: np.ndarray, label: str, xlabel: str, title: str
) -> None:
    """Each stacked bar's total at its end (``label`` a format), the method names top to bottom, room
    on the right for the totals."""
    for yi, total in enumerate(totals):
        axes.annotate(
            label.format(total),
            (total, yi),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=SMALL_SIZE,
        )
    axes.set_yticks(np.arange(len(names)), names, fontsize=LABEL_SIZE)
    axes.invert_yaxis()
    axes.set_xlim(0, max(float(totals.max(initial=0.0)), 1e-3) * 1.18)
    axes.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    axes.set_title(title, fontsize=TITLE_SIZE)


def precision_recall(results: dict[str, Any], path: Path) -> Path:
    """One panel per class: every method's precision–recall curve (VOC, IoU 0.5)."""
    classes = results["class_names"]
    columns = min(len(classes), 3)
    rows = -(-len(classes) // columns)
    figure = new_figure(4.2 * columns, 3.8 * rows)
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).reshape(-1)
    for axes, name in zip(grid, classes, strict=False):
        for row in results["methods"]:
            curve = row["pr_curves"][name]
            ap = row["per_class_ap"].get(name)
            label = f"{row['name']} (AP {ap:.1f})" if ap is not None else row["name"]
            axes.plot(
                curve["recall"],
                curve["precision"],
                color=METHOD_COLOURS[row["method"]],
                label=label,
                linewidth=2,
            )
        axes.set_title(name, fontsize=LABEL_SIZE)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.set_xlabel("recall", fontsize=SMALL_SIZE)
        axes.set_ylabel("precision", fontsize=SMALL_SIZE)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=SMALL_SIZE - 1.5, loc="lower left")
    for axes in grid[len(classes) :]:
        axes.set_visible(False)
    figure.suptitle("Precision–recall per class (VOC, IoU 0.5)", fontsize=TITLE_SIZE)
    return save_png(figure, path)


def proposal_recall(results: dict[str, Any], path: Path) -> Path:
    """Recall against IoU of the test images' proposals: Selective Search, and the RPN when trained."""
    figure = new_figure(7.5, 4.8)
    axes = figure.add_subplot()
    colours = {"Selective Search": "#E69F00", "RPN": METHOD_COLOURS["faster"]}
    for name, curve in results["proposal_recall"].items():
        label = f"{name} ({curve['boxes_per_image']:.0f} boxes/image)"
        axes.plot(
            curve["iou"], curve["recall"], marker="o", color=colours.get(name), label=label, linewidth=2
        )
    axes.set_xlim(0.5, 0.95)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("IoU threshold", fontsize=LABEL_SIZE)
    axes.set_ylabel("recall of ground-truth boxes", fontsize=LABEL_SIZE)
    axes.set_title("Proposal recall against IoU (test images)", fontsize=TITLE_SIZE)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=SMALL_SIZE)
    return save_png(figure, path)


def detections_grid(results: dict[str, Any], report: Path, path: Path, images: int = 4) -> Path:
    """The first ``images`` test images (by id), one row each, one column per method: the detections
    scoring ≥ :data:`DRAW_THRESHOLD`, coloured by class, over the image, gt boxes dashed."""
    from rcnn_cli.data import open_dataset, read_image

    settings = results["settings"]
    records = sorted(
        open_dataset(settings["dataset"], split=settings["split_test"]).records, key=lambda r: r.image_id
    )[:images]
    methods = results["methods"]
    class_colours = ("#ff7f0e", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
    by_method = {}
    for row in methods:
        dets = json.loads((report / row["detections"] / "detections.json").read_text())
        by_method[row["method"]] = dets
    figure = new_figure(3.6 * max(len(methods), 1), 3.0 * max(len(records), 1) + 0.6)
    grid = figure.subplots(max(len(records), 1), max(len(methods), 1), squeeze=False)
    for i, record in enumerate(records):
        rgb = read_image(record.path)
        for j, row in enumerate(methods):
            axes = grid[i][j]
            show_image(axes, rgb, row["name"] if i == 0 else None)
            axes.set_xticks([])
            axes.set_yticks([])
            draw_boxes(axes, np.asarray(record.boxes).reshape(-1, 4), "white", width=1.0, style="--")
            mine = [
                d
                for d in by_method[row["method"]]
                if str(d["image_id"]) == str(record.image_id) and d["score"] >= DRAW_THRESHOLD
            ]
            for d in mine:
                x, y, w, h = d["bbox"]
                colour = class_colours[(int(d["category_id"]) - 1) % len(class_colours)]
                draw_boxes(axes, [[x, y, x + w, y + h]], colour, width=2.0)
            if j == 0:
                axes.set_ylabel(str(record.image_id), fontsize=SMALL_SIZE)
    handles = [(name, class_colours[k % len(class_colours)]) for k, name in enumerate(results["class_names"])]
    from matplotlib.lines import Line2D

    figure.legend(
        [Line2D([], [], color=c, linewidth=3) for _, c in handles]
        + [Line2D([], [], color="grey", linestyle="--")],
        [n for n, _ in handles] + ["ground truth"],
        loc="lower center",
        ncols=len(handles) + 1,
        fontsize=SMALL_SIZE,
    )
    figure.suptitle(f"Detections scoring ≥ {DRAW_THRESHOLD} on the same test images", fontsize=TITLE_SIZE)
    return save_png(figure, path)


def draw_all(results: dict[str, Any], report: Path) -> dict[str, str]:
    """Every chart into ``report/`` (names relative to it), those that have something to show."""
    made = {}
    if results["methods"]:
        made["accuracy_vs_time"] = accuracy_vs_time(results, report / "accuracy_vs_time.png")
        made["stage_times"] = stage_times(results, report / "stage_times.png")
        made["precision_recall"] = precision_recall(results, report / "precision_recall.png")
        made["detections"] = detections_grid(results, report, report / "detections.png")
    if results["proposal_recall"]:
        made["proposal_recall"] = proposal_recall(results, report / "proposal_recall.png")
    return {name: str(p.relative_to(report)) for name, p in made.items()}
