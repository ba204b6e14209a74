"""Fast R-CNN RoI max pooling (Girshick 2015, §2.1): every RoI becomes a fixed H×W grid.

The RoI's corners are rounded onto the feature map, the RoI is split into
pooled_height × pooled_width bins (floor/ceil edges) and each bin is max-pooled,
channel by channel. Same arguments and numbers as ``torchvision.ops.roi_pool``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from rcnn_cli.ops import _extension
from rcnn_cli.ops._validate import as_rois, check_feature_map, check_spatial_scale, pair


def roi_pool(
    input: Tensor,
    rois: Tensor | Sequence[Tensor],
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """Max-pool every RoI of ``input`` into ``output_size`` bins.

    Args:
        input: Tensor[N, C, H, W] feature maps (float32/float64 on CPU; also half/bfloat16 on CUDA).
        rois: Tensor[K, 5] rows (batch_index, x1, y1, x2, y2) in image pixels, or a list of
            N Tensor[L_i, 4] boxes (x1, y1, x2, y2), one per image.
        output_size: (pooled_height, pooled_width) or an int for a square grid (7 for VGG16).
        spatial_scale: feature-map pixels per image pixel (1/16 for VGG16 conv5).

    Returns:
        Tensor[K, C, pooled_height, pooled_width]. Bins that fall outside the map are 0.
        Differentiable with respect to ``input`` (the gradient goes to each bin's maximum).
    """
    check_feature_map("roi_pool", input)
    scale = check_spatial_scale("roi_pool", spatial_scale)
    pooled_height, pooled_width = pair("roi_pool", output_size)
    rois = as_rois("roi_pool", rois, input)
    if _extension.values_only(input):  # inference: no argmax to compute and store
        output = _extension.ops()._roi_max_pool_values(input, rois, scale, [pooled_height, pooled_width])
        return output.view(rois.shape[0], input.shape[1], pooled_height, pooled_width)
    output, _argmax = _extension.ops().roi_pool(input, rois, scale, pooled_height, pooled_width)
    return output


def roi_pool_with_argmax(
    input: Tensor,
    rois: Tensor | Sequence[Tensor],
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """:func:`roi_pool` and where each bin's maximum is: the forward kernel's argmax, which its
    backward pass sends the gradient to (for pictures of what RoI pooling picks).

    Returns:
        (Tensor[K, C, pooled_height, pooled_width] as :func:`roi_pool`, Tensor[K, C, pooled_height,
        pooled_width] int32: the cell ``h · W + w`` of each maximum in its image's H×W map, -1 for an
        empty bin). Ties go to the first cell in row-major order.
    """
    check_feature_map("roi_pool", input)
    scale = check_spatial_scale("roi_pool", spatial_scale)
    pooled_height, pooled_width = pair("roi_pool", output_size)
    rois = as_rois("roi_pool", rois, input)
    output, argmax = _extension.ops().roi_pool(input, rois, scale, pooled_height, pooled_width)
    return output, argmax


class RoIPool(nn.Module):
    """:func:`roi_pool` as a module: ``RoIPool(7, 1 / 16)(features, rois)``."""

    def __init__(self, output_size: int | Sequence[int], spatial_scale: float) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Tensor | Sequence[Tensor]) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
