"""What the rest of the toolkit needs to know about the networks before building one: the backbones by
the Fast R-CNN paper's names and the kinds of RoI pooling. Plain data without torch, so that the
command line lists the choices at start-up; :mod:`rcnn_cli.models.backbones` builds the networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

#: ``--pool``: RoI max pooling (Fast R-CNN), the SPP pyramid (SPPnet), or RoIAlign (Mask R-CNN).
PoolKind = Literal["roi", "spp", "align"]
POOL_KINDS: tuple[str, ...] = get_args(PoolKind)


@dataclass(frozen=True)
class BackboneSpec:
    """What the rest of the model needs to know about a backbone.

    ``frozen_below``: the first trainable layer by default; layers before it stay frozen
    (paper §4.5: conv1-conv2 of VGG16 are not fine-tuned; conv1 of S and M).
    """

    name: str
    stride: int
    out_channels: int
    pool_size: int
    fc_dims: tuple[int, int]
    frozen_below: str | None


SPECS: dict[str, BackboneSpec] = {
    "caffenet": BackboneSpec("caffenet", 16, 256, 6, (4096, 4096), "conv2"),
    "vgg_cnn_m_1024": BackboneSpec("vgg_cnn_m_1024", 16, 512, 6, (4096, 1024), "conv2"),
    "vgg16": BackboneSpec("vgg16", 16, 512, 7, (4096, 4096), "conv3_1"),
    "small": BackboneSpec("small", 8, 128, 7, (512, 512), None),
}
