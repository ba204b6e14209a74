"""Evaluation results as a rich table on screen and as a JSON document.

The engine builds plain dicts (``detection_report``, ``proposal_report``); display and file writing stay
here so that the maths modules never print. Numbers are AP in percent (0-100), as the papers report them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rcnn_cli.evaluation.coco_ap import CocoResult
from rcnn_cli.evaluation.voc_ap import VocResult

DETECTION_COLUMNS = (
    ("voc07_ap", "VOC07 AP"),
    ("voc_ap", "VOC AP"),
    ("coco_ap", "COCO AP"),
    ("coco_ap50", "AP50"),
    ("coco_ap75", "AP75"),
)


def make_console() -> Console:
    """A console for tables: the terminal's width on a TTY, wide enough not to wrap when piped or captured."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _pct(value: float) -> float | None:
    """AP in percent rounded for reading, or None (JSON null) where undefined."""
    return None if value is None or math.isnan(value) else round(100.0 * float(value), 2)


def detection_report(class_names: Sequence[str], voc: VocResult, coco: CocoResult | None) -> dict[str, Any]:
    """A JSON-ready dict: ``classes`` (one row per class) and ``mean`` (mean over classes with ground truth).

    VOC means are over classes with positives (the devkit's mAP); COCO means are COCOeval's own summary.
    """
    rows = []
    for k, name in enumerate(class_names):
        row: dict[str, Any] = {
            "class": name,
            "label": k + 1,
            "positives": int(voc.num_positives[k]),
            "detections": int(voc.num_detections[k]),
            "voc07_ap": _pct(voc.ap_07[k]),
            "voc_ap": _pct(voc.ap_area[k]),
        }
        if coco is not None:
            row.update(coco_ap=_pct(coco.ap[k]), coco_ap50=_pct(coco.ap50[k]), coco_ap75=_pct(coco.ap75[k]))
        rows.append(row)
    mean: dict[str, Any] = {
        "class": "mean",
        "positives": int(voc.num_positives.sum()),
        "detections": int(voc.num_detections.sum()),
        "voc07_ap": _pct(voc.map_07),
        "voc_ap": _pct(voc.map_area),
    }
    if coco is not None:
        mean.update(
            coco_ap=_pct(coco.mean_ap), coco_ap50=_pct(coco.mean_ap50), coco_ap75=_pct(coco.mean_ap75)
        )
    return {"kind": "detection_evaluation", "classes": rows, "mean": mean}


def _fmt(value: Any, digits: str = ".1f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, digits) if isinstance(value, float) else str(value)


def print_detection_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    columns = [(key, title) for key, title in DETECTION_COLUMNS if key in report["mean"]]
    table = Table(title="Detection AP (%)", show_lines=False)
    table.add_column("class")
    table.add_column("GT", justify="right")
    table.add_column("dets", justify="right")
    for _, title in columns:
        table.add_column(title, justify="right")
    for row in report["classes"]:
        table.add_row(
            row["class"], str(row["positives"]), str(row["detections"]), *(_fmt(row[k]) for k, _ in columns)
        )
    mean = report["mean"]
    table.add_section()
    table.add_row(
        "[bold]mean[/bold]",
        str(mean["positives"]),
        str(mean["detections"]),
        *(f"[bold]{_fmt(mean[k])}[/bold]" for k, _ in columns),
    )
    console.print(table)


def print_rows(title: str, rows: Sequence[dict[str, Any]], console: Console | None = None) -> None:
    """A plain table of dict rows (same keys in every row), e.g. proposal quality or an SVD sweep."""
    console = console or make_console()
    table = Table(title=title)
    if not rows:
        console.print(f"{title}: nothing to show")
        return
    for key in rows[0]:
        table.add_column(str(key), justify="left" if isinstance(rows[0][key], str) else "right")
    for row in rows:
        table.add_row(*(_fmt(v, ".4g") for v in row.values()))
    console.print(table)


def write_report(path: str | Path, report: dict[str, Any]) -> None:
    """Write ``report`` as JSON, atomically (a partial file never replaces a good one)."""
    from rcnn_cli.artifacts import atomic_write_json

    atomic_write_json(Path(path), report)
