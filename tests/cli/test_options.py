"""The shared parameter types: what they accept, and the one-line usage error for what they refuse."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rcnn_cli.cli.common import DeviceType
from rcnn_cli.cli.main import cli
from rcnn_cli.cli.options import (
    IntListType,
    LabelledFolder,
    LabelledFolderType,
    RankSettingsType,
    RanksType,
    merge_ranks,
    parse_ranks,
)
from rcnn_cli.errors import RcnnError


def test_parse_ranks() -> None:
    assert parse_ranks("fc6=1024,fc7=256") == {"fc6": 1024, "fc7": 256}
    assert parse_ranks(" fc7 = 64 ") == {"fc7": 64}
    assert parse_ranks("none") == parse_ranks("") == {}
    for bad, why in (("fc6", "LAYER=RANK"), ("fc6=x", "LAYER=RANK"), ("fc9=3", "unknown layer 'fc9'")):
        with pytest.raises(RcnnError, match=why):
            parse_ranks(bad)
    with pytest.raises(RcnnError, match="LAYER=RANK"):
        parse_ranks("fc6=-1")  # not digits
    with pytest.raises(RcnnError, match=">= 1"):
        parse_ranks("fc6=0")


def test_merge_ranks_per_layer_values_win() -> None:
    assert merge_ranks(256, None) == {"fc6": 256, "fc7": 256}
    assert merge_ranks(256, {"fc7": 64}) == {"fc6": 256, "fc7": 64}
    assert merge_ranks(None, None) == {}


def test_types_convert_and_fail() -> None:
    assert RanksType().convert("fc6=8", None, None) == {"fc6": 8}
    assert RankSettingsType().convert("none;fc6=8,fc7=2", None, None) == [{}, {"fc6": 8, "fc7": 2}]
    assert IntListType().convert("480,576", None, None) == (480, 576)
    assert IntListType(length=2).convert("512,256", None, None) == (512, 256)
    for ptype, bad in (
        (RanksType(), "fc6=0"),
        (RankSettingsType(), "none;fc8=3"),
        (IntListType(), "600,x"),
        (IntListType(), "0"),
        (IntListType(length=2), "512"),
        (DeviceType(), "gpu"),
        (DeviceType(), "cuda:x"),
    ):
        with pytest.raises(click.BadParameter):
            ptype.convert(bad, None, None)
    assert DeviceType().convert("CUDA:1", None, None) == "cuda:1"


def test_labelled_folder_type(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "props").mkdir()
    (tmp_path / "a=b").mkdir()  # an existing folder is taken whole, '=' and all
    convert = LabelledFolderType().convert
    assert convert("ss=props", None, None) == LabelledFolder("ss", Path("props"))
    assert convert("props", None, None) == LabelledFolder("props", Path("props"))
    assert convert("props/", None, None) == LabelledFolder("props", Path("props"))
    assert convert(".", None, None) == LabelledFolder(tmp_path.name, Path("."))
    assert convert("a=b", None, None) == LabelledFolder("a=b", Path("a=b"))
    assert convert("x=a=b", None, None) == LabelledFolder("x", Path("a=b"))
    for bad in ("=props", "ss=", "ss=nothing", "nothing"):
        with pytest.raises(click.BadParameter):
            convert(bad, None, None)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["detect", "x.jpg", "--model", "m.pt", "-o", "o", "--svd-ranks", "fc6=zero"], "--svd-ranks"),
        (["detect", "x.jpg", "--model", "m.pt", "-o", "o", "--nms", "1.5"], "--nms"),
        (["detect", "x.jpg", "--model", "m.pt", "-o", "o", "--score-threshold", "1"], "--score-threshold"),
        (["detect", "x.jpg", "--model", "m.pt", "-o", "o", "--max-detections", "0"], "--max-detections"),
        (["compress", "m.pt", "-o", "s.pt", "--svd-rank", "0"], "--svd-rank"),
        (["propose", "x", "-o", "p", "--max-proposals", "-1"], "--max-proposals"),
        (["propose", "x", "-o", "p", "--workers", "0"], "--workers"),
        (["--device", "tpu", "check", "x"], "--device"),
        (["train", "--dataset", "d", "--proposals", "x", "-o", "r", "--scales", "0"], "--scales"),
        (["train", "--dataset", "d", "--proposals", "x", "-o", "r", "--max-size", "-5"], "--max-size"),
        (["train", "--dataset", "d", "--proposals", "x", "-o", "r", "--fc-dims", "512"], "--fc-dims"),
        (["detect", "x.jpg", "--model", "m.pt", "-o", "o", "--scale", "0"], "--scale"),
        (["extract", "d", "-o", "f", "--max-size", "-5"], "--max-size"),
        (["evaluate", "--dataset", "d", "--svd-sweep", "--sweep-ranks", "fc6=1;fc9=2"], "--sweep-ranks"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(
    args: list[str], named: str, tmp_path, monkeypatch
) -> None:
    """Refused while parsing, before any file is read: exit code 2 and the option's name, no traceback."""
    monkeypatch.chdir(tmp_path)
    for name in ("m.pt", "x.jpg"):
        (tmp_path / name).write_bytes(b"not read")
    for name in ("x", "d"):
        (tmp_path / name).mkdir()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output
