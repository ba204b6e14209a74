"""What training learns: a short CPU run on the synthetic shapes must detect them (mAP@0.5)."""

from __future__ import annotations

import pytest

from rcnn_cli.data import make_synthetic_voc, open_dataset, read_record
from rcnn_cli.inference.model_map import checkpoint_voc_map
from rcnn_cli.proposals.jitter import write_jittered_proposals
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.proposals_io import load_proposals
from rcnn_cli.training.sampling import SamplerConfig
from rcnn_cli.training.setup import RunSpec, build_trainer


@pytest.mark.slow
def test_short_training_detects_synthetic_shapes(tmp_path) -> None:
    make_synthetic_voc(tmp_path / "voc", 80, seed=1, image_size=(128, 96), min_size=20)
    every = open_dataset(tmp_path / "voc")
    write_jittered_proposals(tmp_path / "props", every.records, num_random=80)
    run = RunSpec(
        dataset=str(tmp_path / "voc"),
        split="trainval",
        proposals=str(tmp_path / "props"),
        out_dir=str(tmp_path / "run"),
        scales=(192,),  # 2x upsampling: small shapes still cover a few stride-8 cells
        max_size=400,
        fc_dims=(128, 128),
    )
    config = TrainConfig(
        iters=400,
        lr=0.01,
        lr_steps=(300,),
        warmup_iters=20,
        sampling=SamplerConfig(rois_per_batch=64),
        checkpoint_every=0,
    )
    build_trainer(run, config, "cpu").fit()
    test = open_dataset(tmp_path / "voc", "test")
    proposals = load_proposals(tmp_path / "props", test.records)
    ap = checkpoint_voc_map(tmp_path / "run" / "model.pt", test.records, proposals)
    # An untrained head scores ~0 here; the full recipe (bench) reaches >= 0.9. The run is
    # deterministic (one thread, tests/training/conftest.py; two threads train other weights). Seeds
    # 0-3 of this recipe score 0.598, 0.720, 0.778, 0.804 through the rcnn detect + evaluate path
    # (seed 0 scored 0.6055 through the earlier VOC-only path): 0.5 tells learning from not learning
    # without sitting on the lowest of them.
    print("synthetic mAP", ap)
    assert ap >= 0.5, ap


@pytest.mark.slow
def test_short_joint_training_proposes_and_detects_synthetic_shapes(tmp_path) -> None:
    """Faster R-CNN, approximate joint training from scratch: the RPN's 300 proposals must find the
    shapes (recall at IoU 0.7) and the detector must detect them on those proposals alone."""
    from rcnn_cli.evaluation.proposal_recall import evaluate_records
    from rcnn_cli.proposals.rpn import RPNProposals
    from rcnn_cli.training.setup import RPNSpec

    make_synthetic_voc(tmp_path / "voc", 80, seed=1, image_size=(128, 96), min_size=20)
    run = RunSpec(
        dataset=str(tmp_path / "voc"),
        split="trainval",
        proposals=None,
        out_dir=str(tmp_path / "run"),
        scales=(192,),
        max_size=400,
        backbone="small",  # the lighter CPU net; the Fast R-CNN test above trains the default
        fc_dims=(128, 128),
        rpn=RPNSpec(anchor_scales="auto"),
    )
    config = TrainConfig(
        iters=400,
        lr=0.01,
        lr_steps=(300,),
        warmup_iters=20,
        sampling=SamplerConfig(rois_per_batch=64),
        checkpoint_every=0,
        stage="joint",
        target_norm="fixed",
    )
    build_trainer(run, config, "cpu", log=lambda _m: None).fit()
    test = open_dataset(tmp_path / "voc", "test")
    model = tmp_path / "run" / "model.pt"
    rpn = RPNProposals(str(model), max_proposals=300)
    quality = evaluate_records(test.records, lambda r: rpn.propose(read_record(r), r).boxes)
    ap = checkpoint_voc_map(model, test.records)
    print("joint: RPN recall@0.7", quality.recall_70, "mAP", ap)
    # After 1 iteration (an untrained RPN and head) this measures recall@0.7 0.065 and mAP 0.012; after
    # these 400 (one thread trains deterministically) 0.978 and 0.618.
    assert quality.recall_70 >= 0.85, quality
    assert ap >= 0.45, ap
