"""Felzenszwalb-Huttenlocher segmentation and the texture bins (C++ kernels)."""

from __future__ import annotations

import numpy as np

from rcnn_cli.proposals.colour_spaces import convert_colour
from rcnn_cli.proposals.selective_search import felzenszwalb, felzenszwalb_multi, texture_bins


def test_two_flat_halves_give_two_regions_in_raster_order() -> None:
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 15:] = (250, 250, 250)
    labels = felzenszwalb(image, k=100, min_size=10, sigma=0.0)
    assert labels.dtype == np.int32 and labels.shape == (20, 30)
    assert (labels[:, :15] == 0).all() and (labels[:, 15:] == 1).all()
    # Smoothing blurs the step into a ramp that may form its own thin regions, but the
    # two halves stay apart.
    smoothed = felzenszwalb(image, k=100, min_size=10, sigma=0.8)
    assert (smoothed[:, :12] == 0).all() and (smoothed[:, 18:] == smoothed[0, 29]).all()
    assert smoothed[0, 29] != 0


def test_small_components_join_a_neighbour() -> None:
    image = np.zeros((20, 20, 3), np.uint8)
    image[5:7, 5:7] = 255  # a 4-pixel speck, far from everything
    with_speck = felzenszwalb(image, k=1, min_size=1, sigma=0.0)
    assert with_speck.max() == 1
    merged = felzenszwalb(image, k=1, min_size=10, sigma=0.0)
    assert merged.max() == 0


def test_larger_k_gives_fewer_regions() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    counts = [felzenszwalb(image, k=k, min_size=1).max() + 1 for k in (10, 100, 1000)]
    assert counts[0] > counts[1] > counts[2]


def test_labels_are_consecutive() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    labels = felzenszwalb(image, k=50, min_size=5)
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))


def test_texture_bins_follow_edge_orientation() -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, 8:] = 200  # dark-to-bright step along +x
    bins = texture_bins(image).astype(np.int64)
    assert bins.shape == (16, 16, 24)
    level = bins % 10
    entry = bins // 10
    assert (entry == np.arange(24)).all()
    # Orientation 0 (d/dx > 0) peaks at the step; orientation 4 (d/dx < 0) and 2 (d/dy) stay in bin 0.
    assert level[8, 7, 0] == 9 and level[8, 8, 0] == 9
    assert (level[:, :, 4] == 0).all() and (level[:, :, 2] == 0).all()
    assert (level[:, :3, 0] == 0).all()


def test_colour_spaces_are_uint8() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    for space, channels in (("hsv", 3), ("lab", 3), ("rgi", 3), ("h", 1), ("i", 1)):
        out = convert_colour(rgb, space)
        assert out.dtype == np.uint8 and out.shape == (5, 6, channels)
    grey = np.full((2, 2, 3), 90, np.uint8)
    assert (convert_colour(grey, "rgi") == [85, 85, 90]).all()


def test_several_thresholds_at_once_equal_one_at_a_time() -> None:
    # felzenszwalb_multi shares the smoothing and the sorted edges between thresholds: each row
    # must be exactly the single-threshold segmentation.
    rng = np.random.default_rng(3)
    image = rng.normal(120, 30, size=(37, 51, 3)).clip(0, 255).astype(np.uint8)
    image[5:20, 10:40] = (200, 40, 40)
    ks, min_sizes = (20.0, 50.0, 200.0, 400.0), (5, 50, 200, 10)
    labels = felzenszwalb_multi(image, ks, min_sizes, sigma=0.8)
    assert labels.dtype == np.int32 and labels.shape == (4, 37, 51)
    for row, k, m in zip(labels, ks, min_sizes, strict=True):
        np.testing.assert_array_equal(row, felzenszwalb(image, k=k, min_size=m, sigma=0.8))
