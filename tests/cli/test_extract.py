"""``rcnn extract`` then ``rcnn train --features``: SPPnet's path (conv once, frozen; fc + head trained)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rcnn_cli.cli.main import cli
from rcnn_cli.proposals.jitter import write_jittered_proposals

pytestmark = pytest.mark.usefixtures("one_thread")


def test_extract_then_train_on_features(tmp_path) -> None:
    from rcnn_cli.data import make_synthetic_voc, open_dataset

    make_synthetic_voc(tmp_path / "voc", 8, seed=3, image_size=(128, 96), min_size=20)
    records = open_dataset(tmp_path / "voc", "trainval").records
    write_jittered_proposals(tmp_path / "props", records, num_random=40)
    runner = CliRunner()
    base = ["-q", "--device", "cpu"]
    cmd = [*base, "extract", str(tmp_path / "voc"), "--split", "trainval", "-o", str(tmp_path / "feats"),
           "--scale", "96", "--max-size", "200", "--flip"]  # fmt: skip
    result = runner.invoke(cli, cmd)
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "feats" / f"{records[0].image_id}.npz") as f:
        assert f["features"].dtype == np.float16 and f["features"].shape[0] == 128
        assert f["features_flipped"].shape == f["features"].shape
        assert float(f["im_scale"]) == 1.0  # 96 px high already
    again = runner.invoke(cli, cmd)
    assert f"extracted 0 images ({len(records)} already done)" in again.output  # resumes
    other = runner.invoke(cli, [*cmd[:-5], "--scale", "80", "--max-size", "200", "--flip"])
    assert other.exit_code == 1 and "scale" in other.output  # stale settings refused

    train = [*base, "train", "--dataset", str(tmp_path / "voc"), "--split", "trainval", "--proposals",
             str(tmp_path / "props"), "-o", str(tmp_path / "run"), "--features", str(tmp_path / "feats"),
             "--iters", "3", "-R", "16", "--fc-dims", "32,32"]  # fmt: skip
    result = runner.invoke(cli, train)
    assert result.exit_code == 0, result.output
    backbone = torch.load(tmp_path / "feats" / "backbone.pt", weights_only=True)["state_dict"]
    model = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    for k, v in backbone.items():
        torch.testing.assert_close(model["state_dict"]["backbone." + k], v, rtol=0, atol=0)  # conv frozen
    assert model["config"]["scales"] == [96] or tuple(model["config"]["scales"]) == (96,)
