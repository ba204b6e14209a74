"""Fuzz the COCO loader: a valid dataset (made here, as the sample ships only VOC XML) mutated in its
structure and in its bytes, and generated documents. Every input ends in a Dataset or an RcnnError."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcnn_cli.data import load_coco
from rcnn_cli.errors import RcnnError
from support.fuzzing import (
    SLOW_EXAMPLES,
    assert_one_line,
    assert_valid_records,
    json_values,
    mutated_bytes,
    mutated_json,
)
from support.inference import write_images

SEED = {
    "info": {"image_root": "."},
    "images": [
        {"id": 1, "file_name": "img0.jpg", "width": 64, "height": 48},
        {"id": 2, "file_name": "img1.jpg", "width": 64, "height": 48},
        {"id": "3", "file_name": "img2.jpg"},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1.5, 2, 10, 20], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 64, 48], "iscrowd": 1},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [30, 20, 5, 5]},
        {"id": 4, "image_id": "3", "category_id": 3, "bbox": [0, 0, 1, 1]},
    ],
    "categories": [{"id": 3, "name": "toothbrush"}, {"id": 1, "name": "car"}],
}
_counter = itertools.count()


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz_coco")
    write_images(root, 3)
    return root


def _document(value) -> bytes:
    return json.dumps(value).encode()


def _coco_shaped(entries):
    return st.fixed_dictionaries(
        {"images": st.lists(entries, max_size=3)},
        optional={"annotations": st.one_of(st.lists(entries, max_size=4), json_values),
                  "categories": st.one_of(st.lists(entries, max_size=3), json_values)},
    )  # fmt: skip


# Entries built from COCO's own keys, so that generated documents get past the first checks.
_keys = st.sampled_from(
    ["id", "image_id", "category_id", "bbox", "file_name", "width", "height", "name", "iscrowd"]
)
_plausible = st.sampled_from(["img0.jpg", 1, 2, [0, 0, 5, 5]])
_entries = st.dictionaries(_keys, st.one_of(json_values, _plausible), max_size=6)

documents = st.one_of(
    mutated_json(SEED).map(_document),
    _coco_shaped(_entries).map(_document),
    mutated_bytes(_document(SEED)),
    json_values.map(_document),
)


def _fuzz(root: Path, document: bytes, on_error: str) -> None:
    path = root / f"coco{next(_counter)}.json"
    path.write_bytes(document)
    try:
        dataset = load_coco(path, on_error=on_error)
    except RcnnError as exc:
        assert_one_line(str(exc))
        return
    finally:
        path.unlink()
    assert_valid_records(dataset)


_health = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=500, deadline=None, suppress_health_check=_health)
@given(documents, st.sampled_from(["skip", "raise"]))
def test_coco_loader_never_tracebacks(image_root: Path, document: bytes, on_error: str) -> None:
    _fuzz(image_root, document, on_error)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=_health)
@given(documents, st.sampled_from(["skip", "raise"]))
def test_coco_loader_never_tracebacks_long(image_root: Path, document: bytes, on_error: str) -> None:
    _fuzz(image_root, document, on_error)


def test_malformed_sections_are_one_line_errors(image_root: Path) -> None:
    for key, value, message in [
        ("annotations", None, "'annotations' must be a list, not null"),
        ("categories", {"1": "car"}, "'categories' must be a list, not dict"),
    ]:
        path = image_root / "bad.json"
        path.write_text(json.dumps({**SEED, key: value}))
        with pytest.raises(RcnnError, match=f"bad.json: {message}"):
            load_coco(path)
    path.write_text("[" * 100_000)
    with pytest.raises(RcnnError, match="not valid JSON"):
        load_coco(path)
    images = [
        {"id": [1], "file_name": "img0.jpg"},
        {"id": {"a": 1}, "file_name": "img1.jpg"},
        {"id": 7, "file_name": "img2.jpg"},
        {"id": "7", "file_name": "img0.jpg"},  # records are keyed by str(id): the same image
    ]
    path.write_text(json.dumps({**SEED, "images": images}))
    dataset = load_coco(path)
    assert [r.image_id for r in dataset.records] == ["7"]
    messages = [str(p) for p in dataset.problems]
    assert sum("lacks an integer id" in m for m in messages) == 2
    assert sum("duplicate id: image id '7'" in m for m in messages) == 1, messages
