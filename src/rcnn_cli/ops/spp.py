"""SPPnet spatial pyramid pooling of RoIs (He et al. 2014, §2.3, §3.1.1).

Each RoI is max-pooled into l×l bins for every pyramid level l, and the levels are
concatenated into one fixed-length vector per RoI. All levels are computed in one
kernel call. The bin rule is roi_pool's (rounded corners, floor/ceil edges), so
``spp_pool(x, rois, levels=(7,))`` equals ``roi_pool(x, rois, 7).flatten(1)``.

Output layout of Tensor[K, C·Σ l²]: level by level in the given order; inside a level
channel-major (c, row, column), i.e. exactly
``torch.cat([roi_pool(x, rois, l, s).flatten(1) for l in levels], dim=1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from rcnn_cli.ops import _extension
from rcnn_cli.ops._validate import as_rois, check_feature_map, check_positive_ints, check_spatial_scale

SPP_LEVELS = (6, 3, 2, 1)
"""The SPPnet detection pyramid: 36 + 9 + 4 + 1 = 50 bins per channel."""


def spp_pool(
    input: Tensor,
    rois: Tensor | Sequence[Tensor],
    levels: Sequence[int] = SPP_LEVELS,
    spatial_scale: float = 1.0,
) -> Tensor:
    """Pool every RoI into a spatial pyramid of ``levels``.

    Args:
        input: Tensor[N, C, H, W] feature maps.
        rois: Tensor[K, 5] (batch_index, x1, y1, x2, y2) or a list of Tensor[L_i, 4].
        levels: pyramid levels, each l giving an l×l grid; default (6, 3, 2, 1).
        spatial_scale: feature-map pixels per image pixel.

    Returns:
        Tensor[K, C·Σ l²] (layout in the module docstring), differentiable w.r.t. ``input``.
    """
    check_feature_map("spp_pool", input)
    scale = check_spatial_scale("spp_pool", spatial_scale)
    levels = check_positive_ints("spp_pool", "levels", levels)
    rois = as_rois("spp_pool", rois, input)
    if _extension.values_only(input):  # inference: no argmax to compute and store
        grids = [side for level in levels for side in (level, level)]
        return _extension.ops()._roi_max_pool_values(input, rois, scale, grids)
    output, _argmax = _extension.ops().spp_pool(input, rois, scale, list(levels))
    return output


class SPPPool(nn.Module):
    """:func:`spp_pool` as a module: ``SPPPool((6, 3, 2, 1), 1 / 16)(features, rois)``."""

    def __init__(self, levels: Sequence[int] = SPP_LEVELS, spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.spatial_scale = spatial_scale

    @property
    def bins_per_channel(self) -> int:
        """Σ l², the output length divided by C (50 for the default pyramid)."""
        return sum(level * level for level in self.levels)

    def forward(self, input: Tensor, rois: Tensor | Sequence[Tensor]) -> Tensor:
        return spp_pool(input, rois, self.levels, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, spatial_scale={self.spatial_scale}"
