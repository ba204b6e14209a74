"""Hypothesis strategies for the loader fuzz tests: mutated real files and generated structures.

Every fuzz test feeds what these make to a loader and accepts exactly two outcomes: a result, or an
:class:`rcnn_cli.errors.RcnnError` (one line for the user). Any other exception is a bug.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np
from hypothesis import strategies as st

# Normal runs stay fast; the slow variants take this many examples per test (override with
# RCNN_FUZZ_EXAMPLES=20000 for a long session).
SLOW_EXAMPLES = int(os.environ.get("RCNN_FUZZ_EXAMPLES", "1000"))

# Numbers and strings that have broken parsers before: huge, non-finite, negative, not numbers.
NASTY_TEXT = st.sampled_from(
    ["", " ", "0", "-1", "1e999", "-1e999", "nan", "inf", "1" * 400, "1e-320", "0x10", "3.5", "a/b",
     "../../x", "/abs", "\u00e9", "\udcff", "NaN", "Infinity", "-0", "1_000", "٣", "two\nlines"]
)  # fmt: skip
NASTY_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e308, 1e-320, 2**63, -(2**63), 2**64]),
)

json_scalars = st.one_of(st.none(), st.booleans(), NASTY_NUMBERS, st.text(max_size=20), NASTY_TEXT)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=8), NASTY_TEXT), inner, max_size=5),
    ),
    max_leaves=20,
)


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few byte-level edits: flips, deletions, insertions, duplications, truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate", "set"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0, 0xFF, ord("<"), ord(">"), ord("&"), ord('"'), ord("9")]))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys / indices) into a nested JSON value, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_json(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` (a JSON value) with a few parts replaced by nasty values, deleted or duplicated."""
    value = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(value)))
        if not path:
            return draw(json_values)
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "delete", "duplicate"]))
        if op == "replace":
            parent[key] = draw(json_values)
        elif op == "delete":
            del parent[key]
        elif isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[f"{key}_copy"] = copy.deepcopy(parent[key])
    return value


def assert_one_line(message: str) -> None:
    """The user sees ``Error: <message>``: one line, even when it quotes their broken file."""
    assert "\n" not in message and "\r" not in message, message


def assert_valid_records(dataset: Any) -> None:
    """What a loader returns obeys DESIGN.md §3: finite boxes with area inside their image, labels
    1..K, one record per id."""
    for record in dataset.records:
        x1, y1, x2, y2 = record.boxes.T
        assert np.isfinite(record.boxes).all() and (x2 > x1).all() and (y2 > y1).all()
        assert (
            (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= record.width).all() and (y2 <= record.height).all()
        )
        assert set(record.labels.tolist()) <= set(range(1, dataset.num_classes + 1))
    assert len({r.image_id for r in dataset.records}) == len(dataset.records)
    for problem in dataset.problems:
        assert_one_line(str(problem))
