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

#: How a model reads its regions. fast_rcnn: one conv pass per image, RoI pooling, the softmax head
#: (and Faster R-CNN, with an RPN). rcnn: the CNN once per warped region, then per-class SVMs and box
#: regression (Girshick et al. 2014). sppnet: one conv pass per image, the spatial pyramid, then SVMs
#: and box regression as R-CNN (He et al. 2014).
MethodKind = Literal["fast_rcnn", "rcnn", "sppnet"]
METHOD_KINDS: tuple[str, ...] = get_args(MethodKind)


@dataclass(frozen=True)
class BackboneSpec:
    """What the rest of the model needs to know about a backbone.

    ``frozen_below``: the first trainable layer by default; layers before it stay frozen
    (paper §4.5: conv1-conv2 of VGG16 are not fine-tuned; conv1 of S and M). ``input_size``: the
    square input R-CNN warps each region to (the network's ImageNet input; for ``small``, the size
    whose conv map, 8×8, the 7×7 RoI pooling just covers).
    """

    name: str
    stride: int
    out_channels: int
    pool_size: int
    fc_dims: tuple[int, int]
    frozen_below: str | None
    input_size: int
    #: The per-RoI head: "fc" (fc6 -> fc7, the paper's), or "stage" (ResNet's C4 design: the network's
    #: last stage, res5, and a global average on a 14x14 RoI grid; ``fc_dims`` are then that stage's
    #: output width, twice).
    head: str = "fc"


#: What ``rcnn train`` builds when no --backbone is given: ``small_context``, trained from scratch, holds
#: on natural photos (raccoon, 30 CPU minutes: VOC07 54.9 -> 81.3, COCO AP75 12.5 -> 34.5 against
#: ``small``) and on BCCD's blood cells (VOC area 84.1 -> 86.2): docs/BENCHMARKS.md, "A recipe for
#: natural photos".
DEFAULT_BACKBONE = "small_context"

SPECS: dict[str, BackboneSpec] = {
    "caffenet": BackboneSpec("caffenet", 16, 256, 6, (4096, 4096), "conv2", 227),
    "vgg_cnn_m_1024": BackboneSpec("vgg_cnn_m_1024", 16, 512, 6, (4096, 1024), "conv2", 224),
    "vgg16": BackboneSpec("vgg16", 16, 512, 7, (4096, 4096), "conv3_1", 224),
    "small": BackboneSpec("small", 8, 128, 7, (512, 512), None, 64),
    "small_context": BackboneSpec("small_context", 8, 128, 7, (512, 512), None, 64),
    "resnet18": BackboneSpec("resnet18", 16, 256, 14, (512, 512), "layer2", 224, head="stage"),
    "resnet50": BackboneSpec("resnet50", 16, 1024, 14, (2048, 2048), "layer2", 224, head="stage"),
    # features.0-3 (stride 4) fixed by default, as ResNet's conv1 and res2.
    "mobilenet_v3_large": BackboneSpec(
        "mobilenet_v3_large", 16, 112, 14, (960, 960), "features.4", 224, head="stage"
    ),
}
