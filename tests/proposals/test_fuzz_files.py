"""Fuzz the proposal-file importers (``--method file``): per-image .npz / .mat / .json and whole-set
.mat / .json, made valid here and then mutated (bytes, structure, arrays of any dtype and shape).
Every input ends in Proposals inside the image or in an RcnnError."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rcnn_cli.data import ImageRecord
from rcnn_cli.errors import RcnnError
from rcnn_cli.proposals.files import FileProposals
from support.fuzzing import SLOW_EXAMPLES, json_values, mutated_bytes, mutated_json

WIDTH, HEIGHT = 64, 48
BOXES = np.array([[0, 0, 63, 47], [10, 5, 20, 15], [3, 3, 3, 3]], np.uint16)
_counter = itertools.count()


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _mat(variables: dict, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=compress)
    return buffer.getvalue()


def _collection_mat() -> bytes:
    images = np.empty((2, 1), dtype=object)
    images[0, 0], images[1, 0] = "x", "y"
    boxes = np.empty((1, 2), dtype=object)
    boxes[0, 0], boxes[0, 1] = BOXES.astype(np.float64), BOXES[:1].astype(np.float64)
    return _mat({"images": images, "boxes": boxes})


JSON_SEED = {"x": {"boxes": BOXES.tolist(), "scores": [0.9, 0.5, 0.1]}, "y": [[1, 1, 5, 5]]}
SEEDS = {
    "x.npz": _npz(boxes=BOXES.astype(np.float32), scores=np.array([0.3, 0.2, 0.1], np.float32)),
    "x_boxes.mat": _mat({"boxes": BOXES}),
    "x.mat": _mat({"boxes": BOXES.astype(np.float64), "note": "compressed"}, compress=True),
    "x.json": json.dumps(JSON_SEED["x"]).encode(),
    "set.mat": _collection_mat(),
    "set.json": json.dumps(JSON_SEED).encode(),
}

# Arrays of every kind numpy stores: odd dtypes, shapes from 0-d to 3-d, non-finite values.
dtypes = st.one_of(
    hnp.floating_dtypes(),
    hnp.integer_dtypes(),
    hnp.boolean_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.unicode_string_dtypes(max_len=3),
    hnp.byte_string_dtypes(max_len=3),
)
arrays = hnp.arrays(dtype=dtypes, shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
mat_values = st.one_of(
    arrays.filter(lambda a: a.dtype.kind not in "c" or a.ndim > 0),
    st.text(max_size=5),
    st.dictionaries(st.sampled_from(["a", "boxes"]), arrays, max_size=2),  # a MATLAB struct
    st.lists(arrays, max_size=3).map(lambda items: np.array([*items, None], dtype=object)[:-1]),  # a cell
)


@st.composite
def proposal_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, content): a seed mutated in its bytes or structure, or a file of generated arrays."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    how = draw(st.sampled_from(["bytes", "structure", "generated"]))
    if how == "bytes":
        return name, draw(mutated_bytes(SEEDS[name]))
    if name.endswith(".json"):
        seed = JSON_SEED if name == "set.json" else JSON_SEED["x"]
        value = draw(mutated_json(seed) if how == "structure" else json_values)
        return name, json.dumps(value).encode()
    if name.endswith(".npz"):
        names = st.sampled_from(["boxes", "scores", "other"])
        return name, _npz(**draw(st.dictionaries(names, arrays, max_size=3)))
    keys = ["boxes", "images", "other"] if name == "set.mat" else ["boxes", "other"]
    try:
        return name, _mat(draw(st.dictionaries(st.sampled_from(keys), mat_values, max_size=3)))
    except Exception:  # values savemat itself refuses are not inputs anyone can have
        return name, SEEDS[name]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_proposal_files")


def _fuzz(base: Path, name: str, content: bytes, image_id: str) -> None:
    folder = base / f"e{next(_counter)}"
    folder.mkdir()
    (folder / name).write_bytes(content)
    source = folder / name if name.startswith("set.") else folder
    record = ImageRecord(image_id, folder / f"{image_id}.jpg", WIDTH, HEIGHT)
    try:
        proposals = FileProposals(str(source), max_proposals=0).propose(None, record)
    except RcnnError:
        return
    boxes, scores = proposals.boxes, proposals.scores
    assert len(boxes) == len(scores) and np.isfinite(boxes).all() and np.isfinite(scores).all()
    assert (boxes >= 0).all() and (boxes[:, 2] <= WIDTH).all() and (boxes[:, 3] <= HEIGHT).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


_health = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
_inputs = (proposal_files(), st.sampled_from(["x", "y"]))


@settings(max_examples=500, deadline=None, suppress_health_check=_health)
@given(*_inputs)
def test_proposal_importers_never_traceback(base: Path, file: tuple[str, bytes], image_id: str) -> None:
    _fuzz(base, *file, image_id)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=_health)
@given(*_inputs)
def test_proposal_importers_never_traceback_long(base: Path, file: tuple[str, bytes], image_id: str) -> None:
    _fuzz(base, *file, image_id)


def test_an_id_never_reads_outside_the_source_folder(tmp_path: Path) -> None:
    source = tmp_path / "deep" / "source"
    (source / "sub").mkdir(parents=True)
    np.savez(tmp_path / "deep" / "outside.npz", boxes=np.array([[0, 0, 5, 5]], np.float32))
    np.savez(source / "sub" / "inside.npz", boxes=np.array([[1, 1, 6, 6]], np.float32))
    method = FileProposals(str(source))
    with pytest.raises(RcnnError, match=r"no proposals file for image '\.\./outside'"):
        method.propose(None, ImageRecord("../outside", tmp_path / "o.jpg", WIDTH, HEIGHT))
    found = method.propose(None, ImageRecord("sub/inside", tmp_path / "i.jpg", WIDTH, HEIGHT))
    assert found.boxes.tolist() == [[1, 1, 6, 6]]  # another tool's subfolders are still found
