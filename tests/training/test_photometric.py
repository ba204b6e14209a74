"""Photometric jitter: each factor against a hand computation, the draw's range and its place in the
seeded random stream (nothing drawn when off, the same factors from the same seed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.photometric import ColorJitter


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)


def test_identity_factors_leave_the_image_unchanged():
    rgb = _image()
    assert np.array_equal(ColorJitter(1.0, 1.0, 1.0).apply(rgb), rgb)


def test_brightness_scales_every_pixel_and_clips():
    rgb = np.array([[[10, 100, 200]]], dtype=np.uint8)
    assert ColorJitter(0.5, 1.0, 1.0).apply(rgb).tolist() == [[[5, 50, 100]]]
    assert ColorJitter(1.5, 1.0, 1.0).apply(rgb).tolist() == [[[15, 150, 255]]]


def test_zero_saturation_is_each_pixels_luma_grey():
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    out = ColorJitter(1.0, 1.0, 0.0).apply(rgb)
    # 0.299 * 255 = 76.2, 0.114 * 255 = 29.1, rounded, the same in every channel
    assert out.tolist() == [[[76, 76, 76], [29, 29, 29]]]


def test_zero_contrast_is_the_images_mean_grey_everywhere():
    rgb = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    out = ColorJitter(1.0, 0.0, 1.0).apply(rgb)
    assert out.tolist() == [[[128, 128, 128], [128, 128, 128]]]  # mean grey 127.5, rounded half up


def test_draw_range_and_no_draw_when_off():
    g = torch.Generator().manual_seed(3)
    before = g.get_state()
    assert ColorJitter.draw(0.0, g) is None
    assert torch.equal(g.get_state(), before)  # a run without jitter keeps its random stream
    factors = [ColorJitter.draw(0.4, g) for _ in range(200)]
    values = np.array([[f.brightness, f.contrast, f.saturation] for f in factors])
    assert values.min() >= 0.6 and values.max() <= 1.4
    assert values.min() < 0.65 and values.max() > 1.35  # the whole range is used
    again = torch.Generator().manual_seed(3)
    assert ColorJitter.draw(0.4, again) == factors[0]


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_config_refuses_a_strength_outside_0_1(value):
    with pytest.raises(RcnnError, match="--color-jitter"):
        TrainConfig(color_jitter=value)
