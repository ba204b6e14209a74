"""RoIAlign (He et al., Mask R-CNN 2017, §3): RoI pooling without quantization.

Instead of rounding the RoI onto the feature map and taking a maximum, every bin
averages bilinearly interpolated samples at regularly spaced points, which removes
RoI pooling's misalignment. Same arguments and numbers as ``torchvision.ops.roi_align``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from rcnn_cli.ops import _extension
from rcnn_cli.ops._validate import OpInputError, as_rois, check_feature_map, check_spatial_scale, pair


def roi_align(
    input: Tensor,
    rois: Tensor | Sequence[Tensor],
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Bilinear RoI pooling.

    Args:
        input: Tensor[N, C, H, W] feature maps.
        rois: Tensor[K, 5] (batch_index, x1, y1, x2, y2) or a list of Tensor[L_i, 4].
        output_size: (pooled_height, pooled_width) or an int.
        spatial_scale: feature-map pixels per image pixel.
        sampling_ratio: samples per bin side; <= 0 means adaptive, ceil(bin size).
        aligned: shift the RoI by -0.5 pixel so that sample points sit at pixel centres
            (the correct alignment); False reproduces the original Detectron behaviour.

    Returns:
        Tensor[K, C, pooled_height, pooled_width], differentiable w.r.t. ``input``.
    """
    check_feature_map("roi_align", input)
    scale = check_spatial_scale("roi_align", spatial_scale)
    pooled_height, pooled_width = pair("roi_align", output_size)
    if int(sampling_ratio) != sampling_ratio:
        raise OpInputError(f"roi_align: sampling_ratio must be an integer, got {sampling_ratio}")
    rois = as_rois("roi_align", rois, input)
    return _extension.ops().roi_align(
        input, rois, scale, pooled_height, pooled_width, int(sampling_ratio), bool(aligned)
    )


class RoIAlign(nn.Module):
    """:func:`roi_align` as a module."""

    def __init__(
        self,
        output_size: int | Sequence[int],
        spatial_scale: float,
        sampling_ratio: int = -1,
        aligned: bool = False,
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Tensor | Sequence[Tensor]) -> Tensor:
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
