"""``rcnn train``: Fast R-CNN training (RoI/SPP pooling, multi-task loss, hierarchical sampling)."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from rcnn_cli.cli.common import get_context, user_errors
from rcnn_cli.cli.method_options import method_options
from rcnn_cli.cli.options import (
    DurationType,
    IntListType,
    RenamedChoice,
    backbone_option,
    image_root_option,
    max_pixels_option,
)
from rcnn_cli.cli.rpn_options import rpn_train_options
from rcnn_cli.models.specs import POOL_KINDS
from rcnn_cli.training.config import (
    CLS_TARGETS,
    LR_STEP_FRACTION,
    OPTIMIZERS,
    PAPER_RECIPE,
    SAMPLERS,
    SMALL_RECIPE,
    TARGET_NORMS,
    TrainConfig,
)

PAPER, SMALL = PAPER_RECIPE, SMALL_RECIPE  # for the option help: [the paper's; small and small_context's]


@click.command(
    epilog="""\b
Examples:
  rcnn propose data/voc --split trainval -o proposals/
  rcnn train        # ./proposals and the dataset it names -> ./runs/DATE-fast-rcnn, then ./runs/latest
  rcnn train --dataset data/voc --split trainval --proposals proposals/ -o runs/voc
  rcnn train --backbone vgg16 --weights vgg16.pth --iters 40000 --lr 0.001 --lr-steps 30000
  rcnn train -o runs/voc --resume                     # continue where it stopped
  rcnn extract data/voc --split trainval --backbone vgg16 --weights vgg16.pth -o feats/
  rcnn train --backbone vgg16 --features feats/ --pool spp -o runs/spp   # SPP pooling, Fast R-CNN's head
  rcnn train --dataset data/voc --split trainval --proposals proposals/ --method rcnn -o runs/rcnn
  rcnn train --dataset data/voc --split trainval --proposals proposals/ --method sppnet \
      --init-from runs/voc/model.pt -o runs/sppnet      # conv layers fixed: from a trained model
  torchrun --nproc_per_node=2 -m rcnn_cli.cli.main train -o runs/ddp   # DDP (gloo on CPU, NCCL on GPU)
  rcnn train --dataset data/voc --split trainval --rpn -o runs/faster     # Faster R-CNN, joint
  rcnn train --dataset data/voc --split trainval --rpn --rpn-schedule alternating -o runs/alt
  rcnn train --dataset data/voc --split trainval --rpn-only -o runs/rpn   # then: rcnn propose --method rpn
""",
)
@click.option(
    "--dataset",
    default=None,
    help="VOC folder, COCO .json or images (see rcnn check) [the one the proposals were made from].",
)
@click.option(
    "--split",
    default=None,
    help="VOC split (ImageSets/Main/SPLIT.txt), e.g. trainval [with the proposals' dataset: theirs, "
    "else trainval, else train, else all].",
)
@click.option(
    "--proposals",
    "proposals",
    default=None,
    type=click.Path(),
    help="Folder from rcnn propose (not with --rpn) [./proposals].",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    default=None,
    type=click.Path(),
    help="Run folder [./runs/DATE-METHOD, marked in ./runs/latest; with --resume: the latest run].",
)
@backbone_option
@click.option("--weights", type=click.Path(), default=None, help="torchvision-layout state dict (.pth).")
@click.option(
    "--weights-fc",
    type=click.Choice(["load", "skip"]),
    default="load",
    show_default=True,
    help="load: --weights' fc6 and fc7 (classifier.0, .3) too; skip: only its conv layers, fc6 and fc7 "
    "trained from scratch (needed with --pool spp: the ImageNet fc6 takes 7x7 bins per channel, the "
    "pyramid gives 50).",
)
@click.option(
    "--freeze-below",
    default="default",
    show_default=True,
    help="First trainable conv layer (e.g. conv3_1); 'none' trains all; default: the paper's.",
)
@click.option("--pool", type=click.Choice(POOL_KINDS), default="roi", show_default=True)
@click.option("--features", type=click.Path(), default=None, help="Cached conv maps from rcnn extract.")
@click.option("--sampler", type=click.Choice(SAMPLERS), default="hierarchical", show_default=True)
@click.option(
    "--images-per-batch", "-N", type=int, default=2, show_default=True, help="N images per minibatch."
)
@click.option(
    "--rois-per-batch", "-R", type=int, default=128, show_default=True, help="R RoIs per minibatch."
)
@click.option("--fg-fraction", type=float, default=0.25, show_default=True)
@click.option("--fg-threshold", type=float, default=0.5, show_default=True, help="fg: IoU >= this.")
@click.option(
    "--bg-threshold-lo", type=float, default=None, help="bg: IoU in [lo, hi) [0.1; rcnn: 0, the paper's]."
)
@click.option("--bg-threshold-hi", type=float, default=0.5, show_default=True)
@click.option(
    "--scales",
    type=IntListType(),
    default=None,
    help="Shorter side(s), comma-separated [600; small nets: 400].",
)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=None,
    help="Cap on the longer side [1000; small nets: 700].",
)
@click.option("--no-flip", is_flag=True, help="No horizontal flips.")
@click.option(
    "--color-jitter",
    type=float,
    default=0.0,
    show_default=True,
    help="Random brightness, contrast and saturation factors in [1-x, 1+x] per training image.",
)
@click.option(
    "--fc-dims",
    type=IntListType(length=2),
    default=None,
    help="fc6,fc7 sizes (e.g. 512,512) to change the head.",
)
@click.option(
    "--iters", type=int, default=None, help=f"Iterations [{PAPER.iters}; small nets: {SMALL.iters}]."
)
@click.option(
    "--lr", type=float, default=None, help=f"Base learning rate [{PAPER.lr}; small nets: {SMALL.lr}]."
)
@click.option(
    "--lr-steps",
    type=IntListType(),
    default=None,
    help=f"Iterations where lr drops x0.1 [{PAPER.lr_steps[0]}; small nets: {SMALL.lr_steps[0]}; "
    f"with --iters: {LR_STEP_FRACTION:.0%} of it].",
)
@click.option(
    "--warmup",
    type=int,
    default=None,
    help=f"Linear lr warm-up iterations [{PAPER.warmup_iters}; small nets: {SMALL.warmup_iters}].",
)
@click.option(
    "--optimizer",
    type=RenamedChoice(OPTIMIZERS, {"adam": "adamw"}),  # "adam" built AdamW: say so in the name
    default="sgd",
    show_default=True,
    help="sgd: the paper's (momentum, weight decay); adamw: Adam with decoupled weight decay.",
)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--weight-decay", type=float, default=0.0005, show_default=True)
@click.option("--lambda", "lam", type=float, default=1.0, show_default=True, help="λ of the box loss.")
@click.option(
    "--lambda-start",
    "lam_start",
    type=float,
    default=None,
    help="λ at the first iteration, falling linearly to --lambda at the first lr step [--lambda].",
)
@click.option("--cls-only", is_flag=True, help="Train classification only (no box regression).")
@click.option(
    "--ema",
    type=float,
    default=None,
    metavar="DECAY",
    help="model.pt holds an exponential moving average of the weights with this decay per iteration "
    "(e.g. 0.998: about the last 500 iterations) [the last iteration's weights].",
)
@click.option(
    "--cls-target",
    type=click.Choice(CLS_TARGETS),
    default="hard",
    show_default=True,
    help="What the classifier learns for a foreground RoI: its class (hard, the paper's) or its IoU "
    "with the object (iou: the rest on background), so that a tighter box scores higher.",
)
@click.option(
    "--target-norm",
    type=click.Choice(TARGET_NORMS),
    default=None,
    help="Box-target means/stds: from the data, or (0, 0.1, 0.2) [empirical; with --rpn: fixed].",
)
@click.option(
    "--max-proposals",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Use at most this many per image, best first (0: all).",
)
@click.option("--checkpoint-every", type=int, default=500, show_default=True)
@click.option("--time-limit", type=float, default=None, help="Stop after this many minutes (resumable).")
@click.option(
    "--budget",
    type=DurationType(),
    default=None,
    help="Fit the whole schedule (iterations, warm-up, lr steps) into this training time, e.g. 90s, "
    "12m, 1.5h: timed on the first iterations and again at 10% of the run, so the run still ends "
    "with the lr stepped.",
)
@click.option("--resume", is_flag=True, help="Continue the run in -o from its last checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--amp", is_flag=True, help="Mixed precision (CUDA only).")
@method_options
@rpn_train_options
@max_pixels_option
@image_root_option
@user_errors
def train(**opts) -> None:
    """Train Fast R-CNN on a dataset and its proposals, or Faster R-CNN (--rpn) on the dataset alone;
    writes RUN/model.pt and RUN/metrics.jsonl."""
    from rcnn_cli.cli.defaults import mark_latest, run_folder, train_inputs
    from rcnn_cli.errors import RcnnError
    from rcnn_cli.progress import Reporter
    from rcnn_cli.training.setup import RunSpec, build_trainer

    ctx = get_context()
    device = ctx.torch_device()
    if opts["amp"] and device.type != "cuda":
        raise RcnnError("--amp needs --device cuda")
    if opts["method"] == "faster-rcnn":
        opts["rpn"] = True
    region_method = opts["method"] in ("rcnn", "sppnet")
    if region_method and (opts["rpn"] or opts["rpn_only"]):
        raise RcnnError(f"--method {opts['method']} trains on proposals from a folder; it has no RPN")
    if opts["rpn"] and opts["rpn_only"]:
        raise RcnnError("--rpn trains the RPN and the detector, --rpn-only the RPN alone: choose one")
    stage = "joint" if opts["rpn"] else "rpn" if opts["rpn_only"] else "fast_rcnn"
    if opts["rpn_schedule"] == "alternating" and not opts["rpn"]:
        raise RcnnError("--rpn-schedule alternating trains a Faster R-CNN: add --rpn")
    config = train_config(opts, stage)
    # A folder given with --rpn is refused by the engine with its own line, so it is passed on as it is.
    inputs = train_inputs(
        opts["dataset"], opts["split"], opts["proposals"], needs_proposals=stage == "fast_rcnn"
    )
    method = {"joint": "faster-rcnn", "rpn": "rpn"}.get(stage, opts["method"])
    spec = RunSpec(
        dataset=inputs.dataset,
        split=inputs.split,
        proposals=inputs.proposals,
        out_dir=run_folder(opts["out_dir"], method, opts["resume"]),
        backbone=opts["backbone"],
        pool=opts["pool"],
        weights=opts["weights"],
        weights_fc=opts["weights_fc"] == "load",
        freeze_below=None if opts["freeze_below"] == "none" else opts["freeze_below"],
        features=opts["features"],
        scales=opts["scales"],
        max_size=opts["max_size"],
        fc_dims=opts["fc_dims"],
        resume=opts["resume"],
        max_pixels=opts["max_pixels"],
        image_root=opts["image_root"],
        rpn=rpn_spec(opts) if stage != "fast_rcnn" else None,
        method=opts["method"] if region_method else "fast_rcnn",
        warp_size=opts["warp_size"] or 0,
        context_padding=-1 if opts["context_padding"] is None else opts["context_padding"],
        init_from=((opts["init_from"], ("backbone", "head")),) if opts["init_from"] else (),
    )

    def log(message: str) -> None:
        if not ctx.quiet:
            click.echo(message, err=True)

    if region_method:
        from rcnn_cli.cli.method_options import posthoc_config
        from rcnn_cli.training.region_schedule import STAGES, train_region_method

        mark_latest(spec.out_dir)
        result_path = train_region_method(spec, config, device, ctx.verbosity, log, posthoc_config(opts))
        stages = STAGES[opts["method"]][0 if opts["features"] is None else 1 :]
        click.echo(f"{opts['method']}: {len(stages)} training stages ({', '.join(stages)}) -> {result_path}")
        return
    if opts["rpn_schedule"] == "alternating":
        from rcnn_cli.training.alternating import train_alternating

        mark_latest(spec.out_dir)
        result_path = train_alternating(spec, config, device, ctx.verbosity, log)
        click.echo(f"4-step alternating training done -> {result_path}")
        return
    trainer = build_trainer(spec, config, device, log=log)
    if trainer.info.is_main:  # now, not at the end: rcnn train --resume continues a killed run
        mark_latest(spec.out_dir)
    if trainer.budget_fit is not None:  # a resumed run goes on with the schedule fitted at its start
        log(f"kept from the start of the run: {trainer.budget_fit.describe()}")
    if not trainer.info.is_main:
        ctx = type(ctx)(device=ctx.device, verbosity=0)
    remaining = trainer.config.iters - trainer.iteration  # a resumed --budget run: the fitted iters
    with Reporter("train", total=remaining, verbosity=ctx.verbosity, unit="it") as report:
        trainer.reporter = report
        result = trainer.fit()
    from rcnn_cli.training import distributed

    distributed.shutdown(trainer.info)
    if trainer.info.is_main:
        from rcnn_cli.training.summary import summary_line

        click.echo(summary_line(result, trainer.config, f"{spec.out_dir}/model.pt", stage))


def train_config(opts: dict[str, Any], stage: str) -> Any:
    """The TrainConfig of the command line's options (None: the backbone's recipe decides)."""
    from rcnn_cli.rpn.anchor_targets import AnchorTargetConfig
    from rcnn_cli.rpn.proposal_layer import ProposalLayerConfig
    from rcnn_cli.training.sampler_config import SamplerConfig

    training_layer = ProposalLayerConfig.for_training()
    layer = {"nms_iou": opts["rpn_nms_iou"], "min_size": opts["rpn_min_size"]}
    return TrainConfig.for_backbone(
        opts["backbone"],
        iters=opts["iters"],
        lr=opts["lr"],
        lr_steps=opts["lr_steps"],
        warmup_iters=opts["warmup"],
        optimizer=opts["optimizer"],
        momentum=opts["momentum"],
        weight_decay=opts["weight_decay"],
        seed=opts["seed"],
        sampler=opts["sampler"],
        sampling=SamplerConfig(
            images_per_batch=opts["images_per_batch"],
            rois_per_batch=opts["rois_per_batch"],
            fg_fraction=opts["fg_fraction"],
            fg_threshold=opts["fg_threshold"],
            bg_threshold_lo=bg_lo
            if (bg_lo := opts["bg_threshold_lo"]) is not None
            else 0.0
            if opts["method"] == "rcnn"
            else 0.1,
            bg_threshold_hi=opts["bg_threshold_hi"],
        ),
        flip=not opts["no_flip"],
        color_jitter=opts["color_jitter"],
        lam=opts["lam"],
        lam_start=opts["lam_start"],
        cls_only=opts["cls_only"],
        cls_target=opts["cls_target"],
        ema=opts["ema"],
        target_norm=opts["target_norm"] or ("empirical" if stage == "fast_rcnn" else "fixed"),
        max_proposals=opts["max_proposals"],
        checkpoint_every=opts["checkpoint_every"],
        amp=opts["amp"],
        time_limit_s=opts["time_limit"] * 60 if opts["time_limit"] else None,
        budget_s=opts["budget"],
        stage=stage,
        rpn_targets=AnchorTargetConfig(
            positive_iou=opts["rpn_positive_iou"],
            negative_iou=opts["rpn_negative_iou"],
            batch_size=opts["rpn_batch_size"],
            positive_fraction=opts["rpn_positive_fraction"],
            ignore_border=not opts["rpn_keep_border"],
        ),
        rpn_proposals=dataclasses.replace(
            training_layer, **{k: v for k, v in layer.items() if v is not None}
        ),
        rpn_lam=opts["rpn_lambda"],
    )


def rpn_spec(opts: dict[str, Any]) -> Any:
    """The RPN of the model to train (RunSpec.rpn): anchors and the test-time proposal layer."""
    from rcnn_cli.rpn.proposal_layer import ProposalLayerConfig
    from rcnn_cli.training.setup import RPNSpec

    given = {
        "pre_nms_top_n": opts["rpn_pre_nms_top_n"],
        "post_nms_top_n": opts["rpn_post_nms_top_n"],
        "nms_iou": opts["rpn_nms_iou"],
        "min_size": opts["rpn_min_size"],
    }
    test = ProposalLayerConfig.for_testing()
    return RPNSpec(
        anchor_scales=opts["anchor_scales"],
        anchor_ratios=opts["anchor_ratios"],
        test_proposals=dataclasses.replace(test, **{k: v for k, v in given.items() if v is not None}),
    )
