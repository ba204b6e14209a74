"""``--budget`` under DDP: every rank fits the same schedule (the measured speed is averaged over the
ranks), so they stay in step and end together."""

from __future__ import annotations

import torch

from support import training as train_helpers

TINY = dict(scales=(96,), max_size=200, fc_dims=(64, 64))


def test_two_processes_fit_the_same_schedule(shapes, tmp_path, monkeypatch) -> None:
    import torch.multiprocessing as mp

    monkeypatch.setenv("RCNN_TEST_PORT", "29561")
    args = (str(shapes), str(tmp_path), TINY, False, 3.0)  # 40 iterations asked, 3 s: fitted to fewer
    mp.spawn(train_helpers.ddp_worker, args=args, nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["config"] == r1["config"]
    fitted = r0["config"]
    assert 23 <= fitted["iters"] <= 40 and len(r0["seen"]) == len(r1["seen"]) == fitted["iters"]
    for k in r0["state"]:
        torch.testing.assert_close(r0["state"][k], r1["state"][k], rtol=0, atol=0)
    checkpoint = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["budget"]["fitted"]["iters"] == fitted["iters"]
