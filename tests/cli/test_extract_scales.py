"""``rcnn extract --scales``: SPPnet's multi-scale option, a map per scale, read back as a pyramid and
fine-tuned on with each RoI at its own scale."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.errors import ArtifactError
from rcnn_cli.training.features import FeatureSource
from support.training import tiny_voc_with_proposals

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = ["-q", "--device", "cpu"]


def extract(root, out: str, *options: str) -> tuple[int, str]:
    cmd = [*BASE, "extract", str(root / "voc"), "--split", "trainval", "-o", str(root / out), *options]
    result = CliRunner().invoke(cli, cmd)
    return result.exit_code, result.output


def test_two_scales_make_a_pyramid_that_trains(tmp_path) -> None:
    from rcnn_cli.data import open_dataset

    root = tiny_voc_with_proposals(tmp_path)
    records = open_dataset(root / "voc", "trainval").records
    code, output = extract(root, "feats", "--scales", "64,96", "--max-size", "200", "--flip")
    assert code == 0, output
    manifest = json.loads((root / "feats" / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["params"]["scales"] == [64, 96]
    assert "scale" not in manifest["params"]
    with np.load(root / "feats" / f"{records[0].image_id}.npz") as f:
        assert sorted(f.files) == sorted(
            [
                "scales",
                "im_scales",
                "features_64",
                "features_96",
                "features_flipped_64",
                "features_flipped_96",
            ]
        )
        assert f["scales"].tolist() == [64, 96] and f["features_96"].dtype == np.float16

    source = FeatureSource(root / "feats", records)
    assert source.scales == (64, 96) and source.uses_pyramid and source.has_flips
    pyramid = source.pyramid(records[0], flip=False)
    assert [im_scale for _, im_scale in pyramid] == pytest.approx([64 / 96, 1.0])  # 128 x 96 images
    small, large = (fmap for fmap, _ in pyramid)
    assert small.dtype == torch.float32 and small.shape[0] == large.shape[0] == 128
    assert large.shape[1:] == (12, 16) and small.shape[1:] == (8, 11)  # stride 8 of 96x128, 64x85
    mirrored, _ = source.get(records[0], 96, flip=True)
    torch.testing.assert_close(mirrored, source.pyramid(records[0], flip=True)[1][0], rtol=0, atol=0)
    assert mirrored.shape == large.shape and not torch.equal(mirrored, large)  # the mirrored image's
    with pytest.raises(ArtifactError, match="no maps at scale 80"):
        source.get(records[0], 80, flip=False)

    again = extract(root, "feats", "--scales", "64,96", "--max-size", "200", "--flip")
    assert again[0] == 0 and f"extracted 0 images ({len(records)} already done)" in again[1]
    other = extract(root, "feats", "--scales", "64,80", "--max-size", "200", "--flip")
    assert other[0] == 1 and "scales: [64, 96] on disk, [64, 80] now" in other[1]  # refused, named
    twice = extract(root, "twice", "--scales", "96,96")
    assert twice[0] == 1 and "--scales 96,96: give each scale once" in twice[1]

    train = [*BASE, "train", "--dataset", str(root / "voc"), "--split", "trainval", "--proposals",
             str(root / "props"), "-o", str(root / "run"), "--features", str(root / "feats"),
             "--pool", "spp", "--iters", "3", "-R", "16", "--fc-dims", "32,32"]  # fmt: skip
    result = CliRunner().invoke(cli, train)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(math.isfinite(r["loss"]) for r in rows)
    model = torch.load(root / "run" / "model.pt", weights_only=True)
    assert list(model["config"]["scales"]) == [64, 96] and model["config"]["pool"] == "spp"


def test_one_scale_keeps_the_single_scale_layout(tmp_path) -> None:
    from rcnn_cli.data import open_dataset

    root = tiny_voc_with_proposals(tmp_path)
    records = open_dataset(root / "voc", "trainval").records[:1]
    code, output = extract(root, "feats", "--scales", "96", "--max-size", "200")  # as --scale 96
    assert code == 0, output
    manifest = json.loads((root / "feats" / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["params"]["scale"] == 96
    assert "scales" not in manifest["params"]
    with np.load(root / "feats" / f"{records[0].image_id}.npz") as f:
        assert sorted(f.files) == ["features", "im_scale"]
    all_records = open_dataset(root / "voc", "trainval").records
    source = FeatureSource(root / "feats", all_records)
    assert source.scales == (96,) and not source.uses_pyramid
    (only,) = source.pyramid(all_records[0], flip=False)
    fmap, im_scale = source.get(all_records[0], 600, flip=False)  # a single-scale folder: its one map
    assert im_scale == only[1] == 1.0 and torch.equal(fmap, only[0])
    rerun = extract(root, "feats", "--scale", "96", "--max-size", "200")
    assert rerun[0] == 0 and "extracted 0 images" in rerun[1]  # the same folder to --scale
