"""Fuzz the VOC loader: mutated real annotation files (the bundled BCCD sample), generated XML and
split files. Every input ends in a Dataset or an RcnnError, and what loads obeys the record rules."""

from __future__ import annotations

import itertools
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcnn_cli.data import load_voc, sample_dataset_path
from rcnn_cli.errors import RcnnError
from support.fuzzing import NASTY_TEXT, SLOW_EXAMPLES, assert_one_line, assert_valid_records, mutated_bytes

SAMPLE = sample_dataset_path()
SEEDS = [p.read_bytes() for p in sorted((SAMPLE / "Annotations").glob("*.xml"))[:8]]
TAGS = ["annotation", "filename", "size", "width", "height", "depth", "object", "name", "difficult",
        "bndbox", "xmin", "ymin", "xmax", "ymax"]  # fmt: skip
_counter = itertools.count()


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> Path:
    """A VOC folder with one real 640x480 image, ``img.jpg``; each example rewrites its annotation."""
    root = tmp_path_factory.mktemp("fuzz_voc")
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    shutil.copy(SAMPLE / "JPEGImages" / "BloodImage_00000.jpg", root / "JPEGImages" / "img.jpg")
    return root


@st.composite
def mutated_tree(draw: st.DrawFn) -> bytes:
    """A sample annotation with elements retexted (nasty numbers), removed, duplicated or added."""
    tree = ET.fromstring(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 5))):
        elements = list(tree.iter())
        # A tag first, then one element with it: the two <size> fields count as much as the
        # hundred fields of the objects.
        tags = sorted({e.tag for e in elements})
        tag = draw(st.sampled_from(tags))
        target = draw(st.sampled_from([e for e in elements if e.tag == tag]))
        op = draw(st.sampled_from(["text", "text", "remove", "duplicate", "add"]))
        parent = next((e for e in elements if target in list(e)), None)
        if op == "text":
            target.text = draw(st.one_of(NASTY_TEXT, st.text(max_size=12)).filter(_xml_safe))
        elif op == "remove" and parent is not None:
            parent.remove(target)
        elif op == "duplicate" and parent is not None:
            parent.append(ET.fromstring(ET.tostring(target)))
        else:
            ET.SubElement(target, draw(st.sampled_from(TAGS))).text = draw(NASTY_TEXT.filter(_xml_safe))
    return ET.tostring(tree)


def _xml_safe(text: str) -> bool:
    """Characters XML 1.0 can hold (the serializer would write an unparsable file otherwise)."""
    return all(c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD for c in text)


@st.composite
def generated_xml(draw: st.DrawFn) -> bytes:
    """Random trees over VOC's tags with nasty texts."""

    def element(depth: int) -> ET.Element:
        node = ET.Element(draw(st.sampled_from(TAGS)))
        node.text = draw(NASTY_TEXT.filter(_xml_safe))
        if depth < 3:
            for _ in range(draw(st.integers(0, 3))):
                node.append(element(depth + 1))
        return node

    root = element(0)
    root.tag = "annotation"
    return ET.tostring(root)


xml_inputs = st.one_of(
    mutated_tree(),
    st.sampled_from(SEEDS).flatmap(mutated_bytes),
    generated_xml(),
)
split_files = st.one_of(
    st.just(b"img\n"),
    mutated_bytes(b"img\nimg 1\n"),
    st.lists(st.one_of(NASTY_TEXT, st.just("img")), max_size=4).map(
        lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")
    ),
)


def _fuzz(root: Path, xml: bytes, split: bytes | None, on_error: str) -> None:
    name = f"s{next(_counter)}"
    (root / "Annotations" / "img.xml").write_bytes(xml)
    if split is not None:
        (root / "ImageSets" / "Main" / f"{name}.txt").write_bytes(split)
    try:
        dataset = load_voc(root, None if split is None else name, on_error=on_error)
    except RcnnError as exc:
        assert_one_line(str(exc))
        return
    assert_valid_records(dataset)


_inputs = (xml_inputs, st.one_of(st.none(), split_files), st.sampled_from(["skip", "raise"]))
_health = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=450, deadline=None, suppress_health_check=_health)
@given(*_inputs)
def test_voc_loader_never_tracebacks(voc_root: Path, xml: bytes, split: bytes | None, on_error: str) -> None:
    _fuzz(voc_root, xml, split, on_error)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=_health)
@given(*_inputs)
def test_voc_loader_never_tracebacks_long(
    voc_root: Path, xml: bytes, split: bytes | None, on_error: str
) -> None:
    _fuzz(voc_root, xml, split, on_error)
