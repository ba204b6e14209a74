"""The pooling picture draws the kernels' bins: the edges in its layout, maxed over in plain PyTorch,
give roi_pool's and spp_pool's outputs, and the maxima it marks are the kernel's argmax."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rcnn_cli.ops import roi_pool, spp_pool
from rcnn_cli.ops.pool_geometry import PoolBins
from rcnn_cli.pictures.inputs import pick_image
from rcnn_cli.pictures.network_view import NetworkView
from rcnn_cli.pictures.pooling import describe_bins, pooling_layout
from rcnn_cli.pictures.pooling_figure import pooling_picture
from support.pictures import assert_picture, sample_path

FLT_LOWEST = torch.finfo(torch.float32).min


def _max_over(features: torch.Tensor, bins: PoolBins) -> torch.Tensor:
    """Tensor[ph, pw]: the maximum of ``features`` Tensor[H', W'] over each bin, 0 when it is empty."""
    out = torch.zeros(bins.rows.shape[0], bins.cols.shape[0])
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            h0, h1, w0, w1 = bins.cells(i, j)
            if h1 > h0 and w1 > w0:
                out[i, j] = features[h0:h1, w0:w1].max().clamp(min=FLT_LOWEST)
    return out


def _random_boxes(count: int, width: float, height: float, generator: torch.Generator) -> torch.Tensor:
    """Tensor[count, 4]: boxes of all sizes, some past the image's border."""
    x1 = torch.rand(count, generator=generator) * width * 1.1 - 0.05 * width
    y1 = torch.rand(count, generator=generator) * height * 1.1 - 0.05 * height
    w = torch.rand(count, generator=generator) * width * 0.7 + 1.0
    h = torch.rand(count, generator=generator) * height * 0.7 + 1.0
    return torch.stack([x1, y1, x1 + w, y1 + h], dim=1)


@pytest.mark.parametrize("backbone", ["small", "vgg16"])
def test_the_drawn_bins_reproduce_the_kernels(backbone: str) -> None:
    view = NetworkView.for_backbone(backbone)
    height, width = 400, 533
    map_size = view.feature_size(height, width)
    g = torch.Generator().manual_seed(0)
    features = torch.randn(map_size, generator=g)
    scale = 1.0 / view.stride
    for box in _random_boxes(30, width, height, g):
        layout = pooling_layout(view, box.tolist(), features, "random")
        rois = torch.cat([torch.zeros(1), box])[None]
        kernel = roi_pool(features[None, None], rois, 7, scale)[0, 0]
        torch.testing.assert_close(_max_over(features, layout.bins), kernel, rtol=0, atol=0)
        torch.testing.assert_close(layout.pooled, kernel, rtol=0, atol=0)
        pyramid = spp_pool(features[None, None], rois, tuple(layout.spp), scale)[0]
        drawn = torch.cat([_max_over(features, layout.spp[level]).flatten() for level in layout.spp])
        torch.testing.assert_close(drawn, pyramid, rtol=0, atol=0)
        # The marked maxima: inside their bins, and holding the bins' outputs.
        empty = layout.bins.empty()
        for i in range(7):
            for j in range(7):
                cell = int(layout.argmax[i, j])
                if empty[i, j]:
                    assert cell == -1
                    continue
                h0, h1, w0, w1 = layout.bins.cells(i, j)
                row, col = divmod(cell, map_size[1])
                assert h0 <= row < h1 and w0 <= col < w1
                assert features[row, col] == kernel[i, j]


def test_the_question_of_the_2x5_map_is_answered() -> None:
    view = NetworkView.for_backbone("small")
    layout = pooling_layout(view, (8.0, 8.0, 80.0, 80.0), torch.zeros(20, 20), "zeros")
    text = describe_bins(layout.example)
    assert "bin (0,0) = row 0, columns 0–2" in text and "bin (0,1) = row 0, columns 2–4" in text
    assert "bin (1,1) = row 1, columns 2–4" in text
    assert "column 2 belongs to two bins" in text and "3 cells" in text


def test_a_box_that_is_not_a_box_is_refused() -> None:
    from rcnn_cli.errors import RcnnError

    with pytest.raises(RcnnError, match="x2 > x1"):
        pooling_layout(NetworkView.for_backbone("small"), (50.0, 10.0, 20.0, 40.0), torch.zeros(8, 8), "z")


def test_the_pooling_picture_of_a_sample_image(tmp_path: Path) -> None:
    picked = pick_image(None, str(sample_path()), None, "BloodImage_00007")
    path = pooling_picture(picked, tmp_path / "pooling.png")
    assert path == tmp_path / "pooling.png"
    assert_picture(path, min_side=900)
