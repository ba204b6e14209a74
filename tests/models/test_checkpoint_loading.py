"""Every way a model file can be wrong ends in one line naming the file, through ``rcnn detect`` too.

The one loader (rcnn_cli.artifacts.read_torch_file + models.checkpoint.load_checkpoint) is fuzzed with
mutated checkpoints: each must load or raise RcnnError, never another exception.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcnn_cli.cli.main import cli
from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.models import load_checkpoint
from support.inference import small_checkpoint, write_images, write_proposals


class _RunsCode:
    """Unpickling this would call os.getcwd (harmless here); a weights-only load must refuse it."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.getcwd, ())


def _valid(tmp_path: Path) -> dict:
    return torch.load(small_checkpoint(tmp_path / "valid.pt"), weights_only=True)


def _broken(valid: dict) -> dict[str, object]:
    """name -> what is saved in place of a checkpoint (or, for bytes, written raw)."""
    partial = copy.deepcopy(valid)
    del partial["config"]["backbone"]
    negative = copy.deepcopy(valid)
    negative["config"]["fc6_dim"] = -48
    few_names = copy.deepcopy(valid)
    few_names["class_names"] = few_names["class_names"][:1]
    wrong_shape = copy.deepcopy(valid)
    wrong_shape["config"]["fc7_dim"] = 33
    strings = copy.deepcopy(valid)
    strings["config"]["scales"] = ["big"]
    return {
        "a list": [1, 2, 3],
        "a tensor": torch.zeros(3),
        "a dict without config": {k: v for k, v in valid.items() if k != "config"},
        "a partial config": partial,
        "negative dims": negative,
        "too few class names": few_names,
        "weights of other shapes": wrong_shape,
        "strings for sizes": strings,
        "random bytes": os.urandom(4096),
        "an empty file": b"",
        "code to run": {"state_dict": _RunsCode()},
    }


@pytest.mark.parametrize(
    "case",
    [
        "a list",
        "a tensor",
        "a dict without config",
        "a partial config",
        "negative dims",
        "too few class names",
        "weights of other shapes",
        "strings for sizes",
        "random bytes",
        "an empty file",
        "code to run",
    ],
)
def test_a_bad_model_file_is_one_line_naming_it(case: str, tmp_path: Path) -> None:
    bad = _broken(_valid(tmp_path))[case]
    path = tmp_path / "model.pt"
    if isinstance(bad, bytes):
        path.write_bytes(bad)
    else:
        torch.save(bad, path)
    with pytest.raises(ArtifactError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert "weights_only=False" not in message and "set to `False`" not in message

    write_images(tmp_path / "images", 1)
    props = write_proposals(tmp_path / "props", ["img0"], [[0, 0, 10, 10]])
    args = ["detect", str(tmp_path / "images"), "--model", str(path), "--proposals", str(props)]
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "dets")])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {path}") and result.output.count("\n") == 1, result.output


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.just(torch.zeros(2)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_checkpoints_load_or_raise_rcnn_error(data: st.DataObject, tmp_path: Path) -> None:
    valid_path = tmp_path / "valid.pt"
    if not valid_path.exists():
        small_checkpoint(valid_path)
    checkpoint = torch.load(valid_path, weights_only=True)
    for _ in range(data.draw(st.integers(1, 3))):
        part = data.draw(st.sampled_from(["top", "config", "state_dict"]))
        target = checkpoint if part == "top" else checkpoint.get(part)
        if not isinstance(target, dict) or not target:
            break
        key = data.draw(st.sampled_from(sorted(target)))
        if data.draw(st.booleans()):
            del target[key]
        else:
            target[key] = data.draw(_VALUES)
    path = tmp_path / "mutated.pt"
    torch.save(checkpoint, path)
    try:
        load_checkpoint(path)
    except RcnnError as exc:
        assert "\n" not in str(exc)
