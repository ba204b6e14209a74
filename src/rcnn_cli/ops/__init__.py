"""RoI pooling, spatial pyramid pooling, RoIAlign and NMS, compiled (rcnn_cli._C).

Same signatures and numbers as ``torchvision.ops``; the kernels are in ``ops/`` at
the repository root (CPU always, CUDA when built with it). Every op checks its inputs
and raises :class:`OpInputError` (an RcnnError and a ValueError) for bad ones.
"""

from rcnn_cli.ops._extension import build_summary, compiled_backends
from rcnn_cli.ops._validate import OpInputError
from rcnn_cli.ops.nms import batched_nms, nms
from rcnn_cli.ops.roi_align import RoIAlign, roi_align
from rcnn_cli.ops.roi_pool import RoIPool, roi_pool, roi_pool_with_argmax
from rcnn_cli.ops.spp import SPP_LEVELS, SPPPool, spp_pool

__all__ = [
    "SPP_LEVELS",
    "OpInputError",
    "RoIAlign",
    "RoIPool",
    "SPPPool",
    "batched_nms",
    "build_summary",
    "compiled_backends",
    "nms",
    "roi_align",
    "roi_pool",
    "roi_pool_with_argmax",
    "spp_pool",
]
