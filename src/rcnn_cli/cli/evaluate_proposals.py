"""``rcnn evaluate --proposals``: recall against IoU of one or more proposals folders, each at one or more
budgets (``--top-n``), as a table, report rows and, with ``--recall-plot``, a figure.

Nothing here is imported at start-up but :func:`check_plot_option`, which loads the plot module only when
the option is given (``rcnn --help`` stays free of numpy and matplotlib).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rcnn_cli.cli.options import LabelledFolder
from rcnn_cli.errors import RcnnError

if TYPE_CHECKING:
    from rcnn_cli.evaluation.recall_iou import RecallCurve

#: The thresholds the table shows (the report has all of them, the plot draws all of them).
TABLE_THRESHOLDS = (0.5, 0.7, 0.9)


def check_plot_option(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Callback of ``--recall-plot``: a path that cannot be written is a usage error (exit code 2)
    before anything is computed."""
    if value is None:
        return None
    from rcnn_cli.evaluation.recall_plot import check_plot_path

    try:
        return check_plot_path(value)
    except RcnnError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def budget_name(top_n: int | None) -> str:
    """``300`` -> "300"; None (every box) -> "all"."""
    return "all" if top_n is None else str(top_n)


def proposal_recall(
    dataset: Any,
    source: tuple[str, str | None],
    proposals: Sequence[LabelledFolder],
    top_ns: Sequence[int] | None,
    recall_plot: Path | None,
    console: Any,
    verbosity: int,
) -> dict[str, Any]:
    """Measure every folder at every budget on ``dataset`` (difficult boxes left out, as in
    ``rcnn propose --eval``), print one table, draw the plot; returns the report (docs/FORMATS.md)."""
    from rcnn_cli.evaluation.recall_iou import IOU_THRESHOLDS, recall_curves_of_records
    from rcnn_cli.evaluation.report import print_rows
    from rcnn_cli.proposals.sources import folder_source

    budgets: list[int | None] = list(dict.fromkeys(top_ns)) if top_ns else [None]
    # Every folder's manifest is checked before the first one is measured.
    readers = [(item, folder_source(item.folder)) for item in proposals]
    rows, table = [], []
    for item, read in readers:
        curves = recall_curves_of_records(dataset.records, lambda r, read=read: read(r, None), budgets)
        for curve in curves:
            row = _report_row(item, curve)
            rows.append(row)
            table.append(
                {
                    "proposals": f"{item.label}@{budget_name(curve.top_n)}",
                    **{f"recall@{t:g}": _round(row[f"recall@{t:g}"]) for t in TABLE_THRESHOLDS},
                    "AR": _round(row["AR"]),
                    "boxes/img": _round(row["boxes/img"]),
                }
            )
    print_rows("Proposal recall (AR: mean recall at IoU 0.5, 0.55, ..., 0.95)", table, console)
    spec, split = source
    report: dict[str, Any] = {
        "kind": "proposal_evaluation",
        "dataset": spec,
        "split": split,
        "iou_thresholds": list(IOU_THRESHOLDS),
        "rows": rows,
    }
    if recall_plot is not None:
        _plot(recall_plot, rows, source)
        report["recall_plot"] = str(recall_plot)
        if verbosity > 0:
            click.echo(f"recall plot written to {recall_plot}", err=True)
    return report


def _report_row(item: LabelledFolder, curve: RecallCurve) -> dict[str, Any]:
    """One report row: the folder, its budget, the counts, recall at every threshold, AR, ABO, MABO
    (JSON null where undefined: no ground-truth box)."""
    row: dict[str, Any] = {
        "label": item.label,
        "proposals": str(item.folder),
        "top_n": curve.top_n,
        "images": curve.num_images,
        "gt_boxes": curve.num_gt,
        "boxes/img": _number(curve.boxes_per_image),
    }
    row.update({f"recall@{t:g}": _number(curve.recall_at(t)) for t in TABLE_THRESHOLDS})
    row.update(
        {
            "AR": _number(curve.average_recall),
            "ABO": _number(curve.abo),
            "MABO": _number(curve.mabo),
            "recall": [_number(r) for r in curve.recall.tolist()],
        }
    )
    return row


def _plot(path: Path, rows: Sequence[dict[str, Any]], source: tuple[str, str | None]) -> None:
    from rcnn_cli.evaluation.recall_iou import IOU_THRESHOLDS
    from rcnn_cli.evaluation.recall_plot import PlotLine, write_recall_plot

    spec, split = source
    name = Path(spec).name or spec
    title = f"Recall vs IoU: {name}" + (f" ({split})" if split else "")
    lines = [
        PlotLine(row["label"], row["top_n"], [float("nan") if r is None else r for r in row["recall"]])
        for row in rows
    ]
    write_recall_plot(path, IOU_THRESHOLDS, lines, title)


def _number(value: float) -> float | None:
    """``value`` for JSON: None for nan."""
    return None if math.isnan(value) else float(value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
