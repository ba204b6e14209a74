"""``rcnn train --method``: which member of the family to train, and the options of R-CNN's and
SPPnet's stages (warping, the SVMs, box regression). Ranges are checked by the engine's configs
(ModelConfig, SVMConfig, BoxRegressionConfig), whose messages name these options. No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: The command line's names; the engine's are ModelConfig.method (fast_rcnn, rcnn, sppnet) plus an RPN.
METHODS = ("fast-rcnn", "faster-rcnn", "rcnn", "sppnet")


def method_options(command: F) -> F:
    """The --method option and R-CNN's / SPPnet's own options."""
    options = [
        click.option(
            "--method",
            type=click.Choice(METHODS),
            default="fast-rcnn",
            show_default=True,
            help="fast-rcnn: one conv pass, RoI pooling, one-stage training; faster-rcnn: plus an RPN "
            "(as --rpn); rcnn: the CNN on every warped region, then SVMs and box regression; sppnet: one "
            "conv pass (conv layers fixed), the spatial pyramid, then SVMs and box regression.",
        ),
        click.option(
            "--warp-size",
            type=click.IntRange(min=1),
            default=None,
            help="rcnn: the square each region is warped to [the backbone's input: 227 caffenet, 224 "
            "vgg16, 64 small].",
        ),
        click.option(
            "--context-padding",
            type=click.IntRange(min=0),
            default=None,
            help="rcnn: pixels of context around the box in the warped window [16 at 227, scaled].",
        ),
        click.option(
            "--init-from",
            type=click.Path(),
            default=None,
            help="Start the conv layers from a trained model.pt (sppnet keeps them fixed: this or "
            "--weights gives them).",
        ),
        click.option(
            "--svm-c", "svm_c", type=float, default=0.001, show_default=True, help="The SVMs' C (R-CNN's)."
        ),
        click.option(
            "--hard-negative-passes",
            type=int,
            default=3,
            show_default=True,
            help="Passes of hard negative mining over the images (fewer when one adds none).",
        ),
        click.option(
            "--bbox-lambda",
            type=float,
            default=1000.0,
            show_default=True,
            help="λ of the ridge box regressors (R-CNN's, on pool5 at mean norm 20).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def posthoc_config(opts: dict[str, Any]) -> Any:
    """The SVM and box-regression settings of the command line."""
    from rcnn_cli.rcnn.bbox_regression import BoxRegressionConfig
    from rcnn_cli.rcnn.svm import SVMConfig
    from rcnn_cli.training.region_schedule import PostHocConfig

    return PostHocConfig(
        svm=SVMConfig(C=opts["svm_c"], max_passes=opts["hard_negative_passes"]),
        boxes=BoxRegressionConfig(lam=opts["bbox_lambda"]),
    )
