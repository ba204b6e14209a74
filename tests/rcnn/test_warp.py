"""R-CNN's warp with context padding against hand-computed windows."""

from __future__ import annotations

import pytest
import torch

from rcnn_cli.rcnn.warp import context_boxes, warp_regions


def ramp_image(height: int, width: int) -> torch.Tensor:
    """Channel 0 holds x + 0.5 (the pixel centre's x), channel 1 y + 0.5, channel 2 ones: bilinear
    sampling of a linear ramp returns the coordinate sampled, so every window is checkable by hand."""
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    return torch.stack([xs, ys, torch.ones(height, width)]).double()


def test_context_box_puts_the_box_padding_pixels_inside_the_window() -> None:
    # S = 8, p = 2: the box grows by 8 / 4 = 2 about its centre (10, 20): 8x4 -> 16x8.
    box = torch.tensor([[6.0, 18.0, 14.0, 22.0]])
    assert context_boxes(box, 8, 2).tolist() == [[2.0, 16.0, 18.0, 24.0]]
    # No padding: the box itself.
    assert context_boxes(box, 8, 0).tolist() == box.tolist()
    with pytest.raises(ValueError, match="padding"):
        context_boxes(box, 8, 4)


def test_warp_samples_the_context_box_at_pixel_centres() -> None:
    image = ramp_image(40, 40)
    box = torch.tensor([[6.0, 18.0, 14.0, 22.0]], dtype=torch.float64)
    out = warp_regions(image, box, size=8, padding=2)
    assert out.shape == (1, 3, 8, 8)
    # Context box x from 2 to 18 in 8 columns of 2 px: centres 3, 5, ..., 17. The ramp holds x + 0.5
    # at pixel centre x + 0.5, i.e. the sampled coordinate itself.
    expected_x = torch.tensor([3.0, 5, 7, 9, 11, 13, 15, 17], dtype=torch.float64)
    expected_y = torch.tensor([16.5, 17.5, 18.5, 19.5, 20.5, 21.5, 22.5, 23.5], dtype=torch.float64)
    torch.testing.assert_close(out[0, 0], expected_x.expand(8, 8))
    torch.testing.assert_close(out[0, 1], expected_y[:, None].expand(8, 8))
    torch.testing.assert_close(out[0, 2], torch.ones(8, 8, dtype=torch.float64))
    # The box proper fills the window minus p = 2 pixels on each side: columns 2..5 sample x in 6..14.
    assert out[0, 0, 0, 2:6].min() >= 6 and out[0, 0, 0, 2:6].max() <= 14


def test_warp_at_an_image_corner_fills_outside_with_the_mean_pixel() -> None:
    image = ramp_image(20, 30)
    # A 4x4 box at the top-left corner, S = 4, p = 1: the box grows by 4 / 2 = 2 to the context box
    # (-2, -2, 6, 6), 2 px per output pixel; column centres at x = -1, 1, 3, 5. x = -1 lies a whole
    # pixel outside the image: the mean pixel (0), the released code's fill; the rest is the image.
    box = torch.tensor([[0.0, 0.0, 4.0, 4.0]], dtype=torch.float64)
    out = warp_regions(image, box, size=4, padding=1)
    inside = torch.zeros(4, 4, dtype=torch.float64)
    inside[1:, 1:] = 1
    torch.testing.assert_close(out[0, 2], inside)
    torch.testing.assert_close(out[0, 0, 2], torch.tensor([0.0, 1.0, 3.0, 5.0], dtype=torch.float64))
    torch.testing.assert_close(out[0, 1, :, 3], torch.tensor([0.0, 1.0, 3.0, 5.0], dtype=torch.float64))
    # Within half a pixel of the edge, bilinear sampling blends the image with the mean: with the
    # context box's x from -0.5 to 3.5, the first column samples x = 0, halfway between the pixel
    # centres -0.5 (outside: 0) and 0.5 (1).
    box = torch.tensor([[0.5, 0.0, 2.5, 4.0]], dtype=torch.float64)
    out = warp_regions(image, box, size=4, padding=1)
    torch.testing.assert_close(out[0, 2, 2, 0], torch.tensor(0.5, dtype=torch.float64))
    # A box wholly outside the image warps to the mean pixel everywhere.
    far = torch.tensor([[100.0, 100.0, 110.0, 110.0]], dtype=torch.float64)
    assert warp_regions(image, far, size=4, padding=1).abs().max() == 0


def test_warp_is_anisotropic_and_keeps_region_order() -> None:
    image = ramp_image(50, 60)
    boxes = torch.tensor([[0.0, 0.0, 40.0, 10.0], [10.0, 10.0, 20.0, 50.0]], dtype=torch.float64)
    out = warp_regions(image, boxes, size=5, padding=0)
    # Each box, whatever its aspect, fills the 5x5 window: x steps of 8 and 2, y steps of 2 and 8.
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([4.0, 12, 20, 28, 36], dtype=torch.float64))
    torch.testing.assert_close(out[1, 1, :, 0], torch.tensor([14.0, 22, 30, 38, 46], dtype=torch.float64))
    assert warp_regions(image, boxes[:0], size=5).shape == (0, 3, 5, 5)
