"""The report's pages: ``results.json`` (everything measured), ``report.md`` (the table, for a terminal
or a repository) and ``index.html`` (the table and the charts; the PNGs sit beside it and are linked by
relative paths, so the folder opens from disk with no server and no network). All written atomically.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rcnn_cli.artifacts import atomic_write_bytes

#: The charts in the order the page shows them, with their captions.
CAPTIONS = {
    "accuracy_vs_time": "Accuracy against test time per image: one point per method.",
    "stage_times": "Where the time goes: test time per image by stage, and training time stage by stage.",
    "precision_recall": "Precision–recall curves per class (VOC, IoU 0.5).",
    "proposal_recall": "Recall of the test images' ground truth by the proposals, against IoU.",
    "detections": "The same test images through every method (detections scoring ≥ 0.5; gt dashed).",
}


def _num(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _mb(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"


def table_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """The seeds' table, one row per method, as strings (shared by the Markdown, HTML and terminal)."""
    out = []
    for row in results["methods"]:
        stages = row["training_stages"]
        test = row["test_ms_per_image"]
        out.append(
            {
                "method": row["name"],
                "training stages": f"{len(stages)}: " + ", ".join(s["name"] for s in stages),
                "training time": _num((row["train_seconds"] or 0) / 60) + " min",
                "disk": _mb(sum(row["disk_bytes"].values())),
                "test ms/image": _num(test["total"], 0),
                "proposals · conv · regions · head · nms (ms)": " · ".join(
                    _num(test[k], 0) for k in ("proposals", "conv", "region features", "head", "nms")
                ),
                "VOC07 mAP": _num(row["voc07_map"]),
                "VOC mAP": _num(row["voc_map"]),
                "COCO AP": _num(row["coco_ap"]),
            }
        )
    return out


def class_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """Per-class VOC (area) AP, one row per class, one column per method."""
    return [
        {"class": name, **{row["name"]: _num(row["per_class_ap"].get(name)) for row in results["methods"]}}
        for name in results["class_names"]
    ]


def ratio_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"ratio": r["what"], "measured here": f"{r['measured']:.1f}×", "in the papers": f"{r['paper']:.0f}×"}
        for r in results["ratios"]
    ]


def markdown_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(none)\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r[h] for h in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    header = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _intro(results: dict[str, Any]) -> str:
    s = results["settings"]
    budget = f"{s['budget_s'] / 60:.0f} min"
    missing = f" Not finished: {', '.join(results['missing'])}." if results["missing"] else ""
    return (
        f"Dataset {s['dataset']}: trained on split {s['split_train']}, tested on {s['split_test']} "
        f"({results['test_images']} images). Backbone {s['backbone']}, one image scale, the same Selective "
        f"Search proposals for R-CNN, SPPnet and Fast R-CNN (≤ {s['max_proposals']} per image, "
        f"{results['selective_search_s_per_image']:.2f} s per image: rcnn propose's wall time over the "
        f"test images); training budget {budget} shared "
        f"equally (rcnn train --budget; R-CNN's and SPPnet's feature caching, SVMs and box regressors come "
        f"on top).{missing}"
    )


def write_markdown(results: dict[str, Any], charts: dict[str, str], path: Path) -> None:
    parts = [
        "# R-CNN family side by side\n",
        _intro(results) + "\n",
        "## Methods\n",
        markdown_table(table_rows(results)),
    ]
    parts += ["## Ratios beside the papers'\n", markdown_table(ratio_rows(results))]
    parts += ["## Per-class AP (VOC area)\n", markdown_table(class_rows(results))]
    for name, caption in CAPTIONS.items():
        if name in charts:
            parts.append(f"![{caption}]({charts[name]})\n\n{caption}\n")
    parts.append(f"The command: `{results['settings'].get('command', 'rcnn compare')}`\n")
    atomic_write_bytes(path, "\n".join(parts).encode())


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222;
       padding: 0 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.35rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f0f3f7; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.92rem; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def write_html(results: dict[str, Any], charts: dict[str, str], path: Path) -> None:
    figures = "".join(
        f'<figure><img src="{html.escape(charts[name])}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, caption in CAPTIONS.items()
        if name in charts
    )
    command = html.escape(results["settings"].get("command", "rcnn compare"))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>R-CNN family side by side</title>
<style>{STYLE}</style></head><body>
<h1>R-CNN family side by side</h1>
<p>{html.escape(_intro(results))}</p>
<h2>Methods</h2>{html_table(table_rows(results))}
<h2>Ratios beside the papers'</h2>{html_table(ratio_rows(results))}
<h2>Per-class AP (VOC area)</h2>{html_table(class_rows(results))}
{figures}
<p>Made by <code>{command}</code>; every number is in <a href="results.json">results.json</a>, the runs
under <a href="runs/">runs/</a>.</p>
</body></html>
"""
    atomic_write_bytes(path, page.encode())


def write_report(results: dict[str, Any], report: Path) -> dict[str, Path]:
    """results.json, the charts, report.md and index.html into ``report``; their paths."""
    from rcnn_cli.report.charts import draw_all

    charts = draw_all(results, report)
    results = {**results, "charts": charts}
    atomic_write_bytes(report / "results.json", (json.dumps(results, indent=1) + "\n").encode())
    write_markdown(results, charts, report / "report.md")
    write_html(results, charts, report / "index.html")
    return {
        "index.html": report / "index.html",
        "report.md": report / "report.md",
        "results.json": report / "results.json",
    }
