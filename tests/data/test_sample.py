"""The bundled BCCD sample: present, licensed, small, in VOC layout with BCCD's split names, and clean."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from rcnn_cli.data import load_voc, sample_dataset_path
from rcnn_cli.data.validate import check_dataset


def test_sample_layout_licence_and_size() -> None:
    root = sample_dataset_path()
    assert "MIT License" in (root / "LICENSE").read_text()
    assert "Shenggan/BCCD_Dataset" in (root / "README.md").read_text()
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total < 6_000_000
    sizes = {name: len(load_voc(root, name)) for name in ("train", "val", "trainval", "test")}
    assert sizes == {"train": 28, "val": 12, "trainval": 40, "test": 20}


def test_sample_is_clean_when_fully_decoded() -> None:
    report = check_dataset(sample_dataset_path())
    assert report.ok, report.problems
    assert len(report.dataset.records) == 60
    assert report.dataset.class_names == ("Platelets", "RBC", "WBC")
    labels = {int(label) for r in report.dataset.records for label in r.labels}
    assert labels == {1, 2, 3}


def test_every_sample_file_is_packaged(repo_root: Path) -> None:
    """pyproject's package-data patterns must cover every file, or a wheel install would lose some."""
    text = (repo_root / "pyproject.toml").read_text()  # (tomllib is Python 3.11+; we support 3.10)
    match = re.search(r'^"rcnn_cli\.data\.sample" = (\[.*\])$', text, flags=re.MULTILINE)
    assert match, "pyproject.toml lacks package-data for rcnn_cli.data.sample"
    patterns = ast.literal_eval(match.group(1))
    root = sample_dataset_path()
    for path in root.rglob("*"):
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts:
            relative = path.relative_to(root)
            assert any(relative.match(pattern) for pattern in patterns), relative
