"""Selective Search on large images: segmented at the working size, boxes back in original pixels.

Normal-size images (the bundled BCCD sample, 640x480) must give exactly what they gave before the
working size existed, i.e. what they give with no working size at all.
"""

from __future__ import annotations

import types

import numpy as np

from rcnn_cli.data import read_image, sample_dataset_path
from rcnn_cli.proposals import OpenCVSelectiveSearch, SelectiveSearch, SelectivesearchPackage
from rcnn_cli.proposals.working_size import DEFAULT_WORKING_PIXELS, to_original, working_image

OBJECTS = np.array([[200, 300, 900, 1100], [1300, 200, 2200, 700], [1500, 1000, 2100, 1650]], np.float32)


def _scene(width: int = 2400, height: int = 1800) -> np.ndarray:
    """A noisy grey background with the three flat rectangles of OBJECTS (scaled to the size)."""
    rng = np.random.default_rng(0)
    image = rng.normal(120, 6, size=(height, width, 3)).clip(0, 255).astype(np.uint8)
    scale = np.array([width / 2400, height / 1800] * 2)
    for box, colour in zip(OBJECTS * scale, [(230, 30, 30), (30, 200, 40), (20, 40, 220)], strict=True):
        x1, y1, x2, y2 = box.astype(int)
        image[y1:y2, x1:x2] = colour
    return image


def _best_iou(objects: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(objects[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(objects[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clip(0).prod(-1)
    union = (objects[:, 2:] - objects[:, :2]).prod(-1)[:, None] + (boxes[:, 2:] - boxes[:, :2]).prod(-1)
    return (inter / (union - inter)).max(axis=1)


def test_working_image_keeps_the_aspect_and_small_images_untouched() -> None:
    big = np.zeros((1800, 2400, 3), np.uint8)
    small, sx, sy = working_image(big, DEFAULT_WORKING_PIXELS)
    h, w = small.shape[:2]
    assert h * w <= DEFAULT_WORKING_PIXELS and (w, h) == (1154, 866)
    assert sx == 2400 / 1154 and sy == 1800 / 866
    np.testing.assert_allclose(
        to_original(np.array([[0, 0, w, h]], np.float32), sx, sy), [[0, 0, 2400, 1800]]
    )
    huge, sx, sy = working_image(np.zeros((6000, 8000, 3), np.uint8), DEFAULT_WORKING_PIXELS)
    assert huge.shape == (866, 1154, 3) and (sx, sy) == (8000 / 1154, 6000 / 866)  # 48 MP: 1/48 of it
    normal = np.zeros((480, 640, 3), np.uint8)
    same, sx, sy = working_image(normal, DEFAULT_WORKING_PIXELS)
    assert same is normal and sx == sy == 1.0


def test_large_image_is_segmented_small_and_boxes_come_back_in_original_pixels(monkeypatch) -> None:
    image = _scene()
    seen = []
    hierarchies = SelectiveSearch.hierarchies

    def spy(self, segmented):
        seen.append(segmented.shape)
        return hierarchies(self, segmented)

    monkeypatch.setattr(SelectiveSearch, "hierarchies", spy)
    p = SelectiveSearch(mode="single").propose(image)
    assert seen == [(866, 1154, 3)]
    b = p.boxes
    assert (b[:, :2] >= 0).all() and (b[:, 2] <= 2400).all() and (b[:, 3] <= 1800).all()
    assert b[:, 2].max() == 2400 and b[:, 3].max() == 1800  # the whole image, not the small one
    assert (_best_iou(OBJECTS, b) > 0.99).all()  # the rectangles, where they are in the original


def test_default_is_bit_identical_to_no_working_size_on_normal_images() -> None:
    root = sample_dataset_path() / "JPEGImages"
    for name, mode in [("BloodImage_00000.jpg", "fast"), ("BloodImage_00001.jpg", "single")]:
        image = read_image(root / name)
        default = SelectiveSearch(mode=mode).propose(image)
        full = SelectiveSearch(mode=mode, working_pixels=None).propose(image)
        assert default.boxes.tobytes() == full.boxes.tobytes()
        assert default.scores.tobytes() == full.scores.tobytes()
    assert SelectiveSearch().params()["working_pixels"] == DEFAULT_WORKING_PIXELS


def test_selectivesearch_package_is_downscaled_too(monkeypatch) -> None:
    import selectivesearch

    seen = []
    original = selectivesearch.selective_search

    def spy(image, **kwargs):
        seen.append(image.shape)
        return original(image, **kwargs)

    monkeypatch.setattr(selectivesearch, "selective_search", spy)
    p = SelectivesearchPackage(working_pixels=12_000).propose(_scene(240, 180))
    assert seen == [(94, 126, 3)]
    assert p.boxes[:, 2].max() == 240 and p.boxes[:, 3].max() == 180
    assert (_best_iou(OBJECTS / 10, p.boxes) > 0.9).all()


def test_opencv_is_downscaled_too(monkeypatch) -> None:
    """With a stand-in for cv2.ximgproc (the contrib build is not installed): rects of the whole small
    image and of its left half come back as the whole original image and its left half."""
    import cv2

    seen = []

    class Segmentation:  # OpenCV's method names
        def setBaseImage(self, image):  # noqa: N802
            seen.append(image.shape)
            self.h, self.w = image.shape[:2]

        def switchToSingleStrategy(self):  # noqa: N802
            pass

        switchToSelectiveSearchFast = switchToSelectiveSearchQuality = switchToSingleStrategy  # noqa: N815

        def process(self):
            return np.array([[0, 0, self.w, self.h], [0, 0, self.w // 2, self.h]])

    segmentation = types.SimpleNamespace(createSelectiveSearchSegmentation=Segmentation)
    monkeypatch.setattr(cv2, "ximgproc", types.SimpleNamespace(segmentation=segmentation), raising=False)
    p = OpenCVSelectiveSearch(working_pixels=12_000).propose(np.zeros((180, 240, 3), np.uint8))
    assert seen == [(94, 126, 3)]
    np.testing.assert_allclose(p.boxes, [[0, 0, 240, 180], [0, 0, 63 * 240 / 126, 180]], rtol=1e-6)
