"""What ``rcnn show pooling`` shows, computed: one RoI on a backbone's feature map, the cells each bin of
RoI max pooling takes (Fast R-CNN §2.1) with the cell the kernel picked as its maximum, the bins of
SPPnet's pyramid (He et al. 2014, §2.3), and RoIAlign's sample points (Mask R-CNN §3).

Every bin edge comes from :mod:`rcnn_cli.ops.pool_geometry`, the kernels' formulas (checked against
them in tests), and every maximum from the kernel itself (:func:`rcnn_cli.ops.roi_pool_with_argmax`).
:mod:`.pooling_figure` draws the result.

Coordinates: *cells* of the H'×W' map, cell (i, j) covering ``[j, j + 1) × [i, i + 1)``, which is image
pixels ``[j·s, (j + 1)·s) × [i·s, (i + 1)·s)`` at stride s; a RoI at image pixels x lies at x / s cells.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from rcnn_cli.errors import RcnnError
from rcnn_cli.ops import SPP_LEVELS, roi_pool_with_argmax
from rcnn_cli.ops.pool_geometry import AlignSamples, PoolBins, roi_align_samples, roi_pool_bins
from rcnn_cli.pictures.network_view import NetworkView

#: The question the picture answers: how does a 2×5 map split into 2×2 bins under RoI pooling?
EXAMPLE_MAP = (2, 5)
EXAMPLE_BINS = 2


@dataclass(frozen=True)
class PoolingLayout:
    """One RoI's poolings on one channel of a feature map.

    ``box``: the RoI (x1, y1, x2, y2) in pixels of the scaled image; ``features`` Tensor[H', W'];
    ``bins``: RoI max pooling's ``output_size``² bins; ``argmax`` Tensor[ph, pw] int64: the cell
    ``h·W' + w`` the kernel took as each bin's maximum (-1: empty bin); ``pooled`` Tensor[ph, pw] its
    output; ``spp``: the bins of each pyramid level; ``align``: RoIAlign's samples (``aligned`` as the
    model's RoIAlign layer); ``example``: the bins of a whole 2×5 map in 2×2.
    """

    view: NetworkView
    box: tuple[float, float, float, float]
    features: Tensor
    feature_name: str
    bins: PoolBins
    argmax: Tensor
    pooled: Tensor
    spp: dict[int, PoolBins]
    align: AlignSamples
    aligned: bool
    sampling_ratio: int
    example: PoolBins

    @property
    def map_size(self) -> tuple[int, int]:
        return int(self.features.shape[0]), int(self.features.shape[1])

    @property
    def roi_cells(self) -> tuple[float, float, float, float]:
        """The exact RoI in cells: ``box / s``."""
        s = self.view.stride
        return tuple(v / s for v in self.box)  # type: ignore[return-value]


def pooling_layout(
    view: NetworkView,
    box: Sequence[float],
    features: Tensor,
    feature_name: str,
    output_size: int = 7,
    levels: Sequence[int] = SPP_LEVELS,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> PoolingLayout:
    """The layout of RoI ``box`` (scaled-image pixels) on ``features`` Tensor[H', W'] of a backbone of
    ``view.stride``; the poolings' settings default to :class:`rcnn_cli.models.ModelConfig`'s."""
    box = tuple(float(v) for v in box)
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise RcnnError(f"--box {x1:g},{y1:g},{x2:g},{y2:g}: need x2 > x1 and y2 > y1")
    features = features.detach().float().cpu().contiguous()
    map_size = (int(features.shape[0]), int(features.shape[1]))
    scale = 1.0 / view.stride
    rois = torch.tensor([[0.0, *box]])
    with torch.no_grad():
        pooled, argmax = roi_pool_with_argmax(features[None, None], rois, output_size, scale)
    return PoolingLayout(
        view=view,
        box=box,  # type: ignore[arg-type]
        features=features,
        feature_name=feature_name,
        bins=roi_pool_bins(box, output_size, scale, map_size),
        argmax=argmax[0, 0].long(),
        pooled=pooled[0, 0],
        spp={level: roi_pool_bins(box, level, scale, map_size) for level in levels},
        align=roi_align_samples(box, output_size, scale, sampling_ratio, aligned, map_size),
        aligned=aligned,
        sampling_ratio=sampling_ratio,
        example=roi_pool_bins(
            (0.0, 0.0, EXAMPLE_MAP[1] - 1, EXAMPLE_MAP[0] - 1), EXAMPLE_BINS, 1.0, EXAMPLE_MAP
        ),
    )


def _span(begin: int, end: int, what: str) -> str:
    return f"{what} {begin}" if end - begin == 1 else f"{what}s {begin}–{end - 1}"


def describe_bins(bins: PoolBins) -> str:
    """The answer in words: which rows and columns each bin takes, and which cells two bins share."""
    rows, cols = bins.rows.tolist(), bins.cols.tolist()
    parts = [
        f"bin ({i},{j}) = {_span(r0, r1, 'row')}, {_span(c0, c1, 'column')}"
        for i, (r0, r1) in enumerate(rows)
        for j, (c0, c1) in enumerate(cols)
    ]
    shared = [
        f"{what} {b}"
        for what, edges in (("row", rows), ("column", cols))
        for (_, end), (begin, _) in itertools.pairwise(edges)
        for b in range(begin, end)
    ]
    sizes = sorted({(r1 - r0) * (c1 - c0) for r0, r1 in rows for c0, c1 in cols})
    text = "; ".join(parts) + "."
    if shared:
        text += f" The bins overlap: {', '.join(shared)} belongs to two bins"
    else:
        text += " No cell belongs to two bins"
    size_text = " or ".join(str(s) for s in sizes)
    return text + f"; each bin holds {size_text} cells."
