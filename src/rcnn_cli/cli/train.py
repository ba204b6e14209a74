"""``rcnn train``: Fast R-CNN training (RoI/SPP pooling, multi-task loss, hierarchical sampling)."""

from __future__ import annotations

import click

from rcnn_cli.cli.common import get_context, max_pixels_option, user_errors


def _ints(text: str | None) -> tuple[int, ...] | None:
    if text is None or text == "":
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None


@click.command(
    epilog="""\b
Examples:
  rcnn propose data/voc --split trainval -o proposals/
  rcnn train --dataset data/voc --split trainval --proposals proposals/ -o runs/voc
  rcnn train ... --backbone vgg16 --weights vgg16.pth --iters 40000 --lr 0.001 --lr-steps 30000
  rcnn train ... -o runs/voc --resume                 # continue where it stopped
  rcnn extract data/voc --split trainval --backbone vgg16 --weights vgg16.pth -o feats/
  rcnn train ... --backbone vgg16 --features feats/   # SPPnet: conv frozen, fc + head only
  torchrun --nproc_per_node=2 -m rcnn_cli.cli.main train ...   # DDP (gloo on CPU, NCCL on GPU)
""",
)
@click.option("--dataset", required=True, help="VOC folder, COCO .json or images (see rcnn check).")
@click.option("--split", default=None, help="VOC split (ImageSets/Main/SPLIT.txt), e.g. trainval.")
@click.option("--proposals", "proposals", required=True, type=click.Path(), help="Folder from rcnn propose.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(), help="Run folder.")
@click.option(
    "--backbone",
    type=click.Choice(["small", "caffenet", "vgg_cnn_m_1024", "vgg16"]),
    default="small",
    show_default=True,
    help="small: a CPU net trained from scratch; the others are the paper's S, M, L.",
)
@click.option("--weights", type=click.Path(), default=None, help="torchvision-layout state dict (.pth).")
@click.option(
    "--freeze-below",
    default="default",
    show_default=True,
    help="First trainable conv layer (e.g. conv3_1); 'none' trains all; default: the paper's.",
)
@click.option("--pool", type=click.Choice(["roi", "spp", "align"]), default="roi", show_default=True)
@click.option("--features", type=click.Path(), default=None, help="Cached conv maps from rcnn extract.")
@click.option(
    "--sampler", type=click.Choice(["hierarchical", "region"]), default="hierarchical", show_default=True
)
@click.option(
    "--images-per-batch", "-N", type=int, default=2, show_default=True, help="N images per minibatch."
)
@click.option(
    "--rois-per-batch", "-R", type=int, default=128, show_default=True, help="R RoIs per minibatch."
)
@click.option("--fg-fraction", type=float, default=0.25, show_default=True)
@click.option("--fg-threshold", type=float, default=0.5, show_default=True, help="fg: IoU >= this.")
@click.option("--bg-threshold-lo", type=float, default=0.1, show_default=True, help="bg: IoU in [lo, hi).")
@click.option("--bg-threshold-hi", type=float, default=0.5, show_default=True)
@click.option("--scales", default=None, help="Shorter side(s), comma-separated [600; small: 400].")
@click.option("--max-size", type=int, default=None, help="Cap on the longer side [1000; small: 700].")
@click.option("--no-flip", is_flag=True, help="No horizontal flips.")
@click.option("--fc-dims", default=None, help="fc6,fc7 sizes (e.g. 512,512) to change the head.")
@click.option("--iters", type=int, default=None, help="Iterations [40000; small: 3000].")
@click.option("--lr", type=float, default=None, help="Base learning rate [0.001; small: 0.01].")
@click.option("--lr-steps", default=None, help="Iterations where lr drops x0.1 [30000; small: 2250].")
@click.option("--warmup", type=int, default=None, help="Linear lr warm-up iterations [0; small: 100].")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--weight-decay", type=float, default=0.0005, show_default=True)
@click.option("--lambda", "lam", type=float, default=1.0, show_default=True, help="λ of the box loss.")
@click.option("--cls-only", is_flag=True, help="Train classification only (no box regression).")
@click.option(
    "--target-norm", type=click.Choice(["empirical", "fixed"]), default="empirical", show_default=True
)
@click.option("--max-proposals", type=int, default=2000, show_default=True)
@click.option("--checkpoint-every", type=int, default=500, show_default=True)
@click.option("--time-limit", type=float, default=None, help="Stop after this many minutes (resumable).")
@click.option("--resume", is_flag=True, help="Continue the run in -o from its last checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--amp", is_flag=True, help="Mixed precision (CUDA only).")
@max_pixels_option
@user_errors
def train(**opts) -> None:
    """Train Fast R-CNN on a dataset and its proposals; writes RUN/model.pt and RUN/metrics.jsonl."""
    from rcnn_cli.errors import RcnnError
    from rcnn_cli.progress import Reporter
    from rcnn_cli.training.config import TrainConfig
    from rcnn_cli.training.sampling import SamplerConfig
    from rcnn_cli.training.setup import SMALL_RECIPE, RunSpec, build_trainer

    ctx = get_context()
    device = ctx.torch_device()
    if opts["amp"] and device.type != "cuda":
        raise RcnnError("--amp needs --device cuda")
    paper = {"iters": 40000, "lr": 0.001, "lr_steps": (30000,), "warmup_iters": 0}
    recipe = SMALL_RECIPE if opts["backbone"] == "small" else paper
    iters = opts["iters"] if opts["iters"] is not None else recipe["iters"]
    lr_steps = _ints(opts["lr_steps"])
    if lr_steps is None:
        lr_steps = recipe["lr_steps"] if opts["iters"] is None else (int(iters * 0.75),)
    fc_dims = _ints(opts["fc_dims"])
    if fc_dims is not None and len(fc_dims) != 2:
        raise RcnnError("--fc-dims takes two sizes: fc6,fc7")
    config = TrainConfig(
        iters=iters,
        lr=opts["lr"] if opts["lr"] is not None else recipe["lr"],
        lr_steps=lr_steps,
        warmup_iters=opts["warmup"] if opts["warmup"] is not None else recipe["warmup_iters"],
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
            bg_threshold_lo=opts["bg_threshold_lo"],
            bg_threshold_hi=opts["bg_threshold_hi"],
        ),
        flip=not opts["no_flip"],
        lam=opts["lam"],
        cls_only=opts["cls_only"],
        target_norm=opts["target_norm"],
        max_proposals=opts["max_proposals"],
        checkpoint_every=opts["checkpoint_every"],
        amp=opts["amp"],
        time_limit_s=opts["time_limit"] * 60 if opts["time_limit"] else None,
    )
    spec = RunSpec(
        dataset=opts["dataset"],
        split=opts["split"],
        proposals=opts["proposals"],
        out_dir=opts["out_dir"],
        backbone=opts["backbone"],
        pool=opts["pool"],
        weights=opts["weights"],
        freeze_below=None if opts["freeze_below"] == "none" else opts["freeze_below"],
        features=opts["features"],
        scales=_ints(opts["scales"]),
        max_size=opts["max_size"],
        fc_dims=fc_dims,  # type: ignore[arg-type]
        resume=opts["resume"],
        max_pixels=opts["max_pixels"],
    )

    def log(message: str) -> None:
        if not ctx.quiet:
            click.echo(message, err=True)

    trainer = build_trainer(spec, config, device, log=log)
    if not trainer.info.is_main:
        ctx = type(ctx)(device=ctx.device, verbosity=0)
    remaining = config.iters - trainer.iteration
    with Reporter("train", total=remaining, verbosity=ctx.verbosity, unit="it") as report:
        trainer.reporter = report
        result = trainer.fit()
    from rcnn_cli.training import distributed

    distributed.shutdown(trainer.info)
    if trainer.info.is_main:
        last = result.history[-1] if result.history else None
        summary = f"trained {result.iterations} iterations -> {spec.out_dir}/model.pt"
        if last is not None:
            summary += f" (last loss {last['loss']:.4f}, accuracy {last['accuracy']:.3f})"
        click.echo(summary)
