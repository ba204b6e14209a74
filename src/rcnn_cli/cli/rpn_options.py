"""The region proposal network's options (Faster R-CNN): anchors, the proposal layer, anchor sampling.

``rcnn train --rpn`` takes all of them; ``rcnn propose --method rpn`` the proposal layer's. Defaults
that depend on the backbone (anchor scales, the head's width) are None here and filled in by the
engine; ranges are checked by the engine's configs (AnchorConfig, ProposalLayerConfig,
AnchorTargetConfig), whose messages name these options. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class FloatListType(click.ParamType):
    """``128,256,512`` -> a tuple of floats; with ``allow_auto``, ``auto`` passes through as the string."""

    name = "NUMBERS"

    def __init__(self, allow_auto: bool = False) -> None:
        self.allow_auto = allow_auto

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        if self.allow_auto and text == "auto":
            return "auto"
        try:
            return tuple(float(v) for v in text.split(","))
        except ValueError:
            hint = " or 'auto'" if self.allow_auto else ""
            self.fail(f"expected comma-separated numbers{hint}, got {value!r}", param, ctx)


def proposal_layer_options(test_time: bool) -> Callable[[F], F]:
    """``--rpn-pre-nms-top-n``, ``--rpn-post-nms-top-n``, ``--rpn-nms-iou``, ``--rpn-min-size``.

    ``test_time``: for a command that runs a trained model, where None means the numbers stored with
    it; for ``rcnn train``, the test-time numbers to store (training itself keeps 12000 / 2000)."""
    default = "the model's" if test_time else "stored with the model"

    def decorate(func: F) -> F:
        options = [
            (
                "--rpn-pre-nms-top-n",
                click.IntRange(min=1),
                f"Best boxes before NMS at test time [{default}: 6000].",
            ),
            (
                "--rpn-post-nms-top-n",
                click.IntRange(min=1),
                f"Proposals kept after NMS at test time [{default}: 300].",
            ),
            ("--rpn-nms-iou", float, "IoU threshold of the RPN's NMS [0.7]."),
            ("--rpn-min-size", float, "Drop proposals narrower or lower than this, scaled-image px [16]."),
        ]
        for name, kind, text in reversed(options):
            func = click.option(name, type=kind, default=None, help=text)(func)
        return func

    return decorate


def rpn_train_options(func: F) -> F:
    """What ``rcnn train`` needs to train a region proposal network."""
    options = [
        click.option(
            "--rpn",
            "rpn",
            is_flag=True,
            help="Faster R-CNN: train an RPN with the detector; no --proposals needed.",
        ),
        click.option(
            "--rpn-schedule",
            type=click.Choice(("joint", "alternating")),
            default="joint",
            show_default=True,
            help="--rpn: approximate joint training, or the paper's 4-step alternating training.",
        ),
        click.option(
            "--rpn-only",
            is_flag=True,
            help="Train the RPN alone (its proposals then feed rcnn propose --method rpn).",
        ),
        click.option(
            "--anchor-scales",
            type=FloatListType(allow_auto=True),
            default=None,
            help="Anchor sizes sqrt(area), scaled-image px, or 'auto' [128,256,512; small: 32,64,128].",
        ),
        click.option(
            "--anchor-ratios",
            type=FloatListType(),
            default=None,
            help="Anchor aspect ratios H/W [0.5,1,2].",
        ),
        proposal_layer_options(test_time=False),
        click.option(
            "--rpn-batch-size", type=int, default=256, show_default=True, help="Anchors sampled per image."
        ),
        click.option(
            "--rpn-positive-fraction",
            type=float,
            default=0.5,
            show_default=True,
            help="At most this share of them positive.",
        ),
        click.option(
            "--rpn-positive-iou",
            type=float,
            default=0.7,
            show_default=True,
            help="Positive anchors: IoU >= this.",
        ),
        click.option(
            "--rpn-negative-iou",
            type=float,
            default=0.3,
            show_default=True,
            help="Negative anchors: IoU < this.",
        ),
        click.option(
            "--rpn-keep-border",
            is_flag=True,
            help="Train on anchors that cross the image border too (the paper ignores them).",
        ),
        click.option(
            "--rpn-lambda", type=float, default=1.0, show_default=True, help="Weight of the RPN's loss."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


#: The proposal layer's options by their ProposalLayerConfig field.
LAYER_OPTIONS = {
    "rpn_pre_nms_top_n": "pre_nms_top_n",
    "rpn_post_nms_top_n": "post_nms_top_n",
    "rpn_nms_iou": "nms_iou",
    "rpn_min_size": "min_size",
}


def rpn_layer_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """The proposal-layer options given (``rpn_post_nms_top_n=...`` from Click) as ProposalLayerConfig
    fields; those left at None are not included."""
    return {field: values[name] for name, field in LAYER_OPTIONS.items() if values.get(name) is not None}
