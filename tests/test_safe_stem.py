"""``safe_stem``: the one mapping from image ids to file names in artifact folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcnn_cli.artifacts import MAX_STEM, check_distinct_stems, safe_stem
from rcnn_cli.errors import ArtifactError

# Ids biased towards what breaks paths: separators, dots, and the look of a rewritten name.
tricky_ids = st.one_of(
    st.text(),
    st.text(alphabet="./\\_-ab0", max_size=12),
    st.from_regex(r"[a-z_./-]{0,6}-[0-9a-f]{8}", fullmatch=True),
    st.text(alphabet="ab", min_size=MAX_STEM - 2, max_size=MAX_STEM + 3),
)


def _is_plain_name(stem: str) -> bool:
    return (
        stem not in ("", ".", "..")
        and not stem.startswith(".")
        and os.sep not in stem
        and "\\" not in stem
        and "\0" not in stem
        and len(stem.encode()) <= MAX_STEM
    )


@settings(max_examples=400, deadline=None)
@given(tricky_ids)
def test_every_stem_is_a_plain_file_name_that_stays_in_its_folder(image_id: str) -> None:
    stem = safe_stem(image_id)
    assert _is_plain_name(stem)
    assert os.path.dirname(os.path.normpath(os.path.join("/some/folder", f"{stem}.json"))) == "/some/folder"
    assert safe_stem(image_id) == stem  # stable


@settings(max_examples=400, deadline=None)
@given(tricky_ids, tricky_ids)
def test_different_ids_get_different_stems(a: str, b: str) -> None:
    if a != b:
        assert safe_stem(a) != safe_stem(b)


def test_known_names_and_the_documented_scheme() -> None:
    assert safe_stem("BloodImage_00001") == "BloodImage_00001"
    assert safe_stem("2007_000027.v2") == "2007_000027.v2"
    # The proposals format (docs/FORMATS.md): unsafe characters -> "_", then "-" + 8 hex of sha256.
    assert safe_stem("x/y") == "x_y-bd3c9047"
    assert safe_stem("../../tmp/x").startswith("_.._tmp_x-")
    # An id that looks like a rewritten one is rewritten too, so that it cannot take another's name.
    looks_rewritten = safe_stem("x/y")
    assert safe_stem(looks_rewritten) != looks_rewritten
    assert safe_stem("") != "" and safe_stem(".hidden").startswith("hidden-")
    assert len(safe_stem("a" * 1000)) <= MAX_STEM
    assert safe_stem("a" * 1000) != safe_stem("a" * 999)
    assert _is_plain_name(safe_stem("bad\udcff-bytes"))  # os.fsdecode of an undecodable name


def test_a_digest_collision_is_refused_before_anything_is_written(monkeypatch, tmp_path: Path) -> None:
    check_distinct_stems(["a", "b", "x/y", "x_y"], tmp_path)
    monkeypatch.setattr("rcnn_cli.artifacts.safe_stem", lambda image_id: "same")
    with pytest.raises(ArtifactError, match="would share the file name 'same'"):
        check_distinct_stems(["a", "b"], tmp_path)
