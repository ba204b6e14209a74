"""Other people's Selective Search, wrapped into our box format.

* ``selectivesearch``: the pip package (Python, scikit-image); regions' ``rect`` is
  ``(x, y, w, h)`` with ``w = max_x - min_x`` over inclusive pixel indices.
* ``opencv``: OpenCV-contrib's ``cv2.ximgproc.segmentation`` (C++); rects are
  ``(x, y, w, h)`` with ``w`` the pixel count. It lives in the ``opencv-contrib-python``
  packages only, not in the ``opencv-python-headless`` this project depends on.

Both segment every pixel, so images above ``working_pixels`` are shrunk first and the boxes
scaled back (:mod:`rcnn_cli.proposals.working_size`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rcnn_cli.errors import RcnnError
from rcnn_cli.proposals.base import Proposals, finalize_boxes
from rcnn_cli.proposals.working_size import DEFAULT_WORKING_PIXELS, to_original, working_image

if TYPE_CHECKING:
    from rcnn_cli.data import ImageRecord

OPENCV_CONTRIB_HINT = (
    "the 'opencv' method needs OpenCV's contrib modules (cv2.ximgproc), which opencv-python-headless "
    "lacks: pip install opencv-contrib-python-headless (in place of opencv-python-headless), "
    "or use --method selective-search (ours, faster)"
)


@dataclass(frozen=True)
class SelectivesearchPackage:
    """``rcnn propose --method selectivesearch``: the ``selectivesearch`` pip package."""

    scale: float = 500.0
    sigma: float = 0.9
    min_region: int = 10
    max_proposals: int = 2000
    min_size: float = 0.0
    working_pixels: int | None = DEFAULT_WORKING_PIXELS
    name: str = field(default="selectivesearch", init=False)
    needs_image: bool = field(default=True, init=False)

    def params(self) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            package_version = version("selectivesearch")
        except PackageNotFoundError:
            package_version = "unknown"
        return {
            "scale": self.scale,
            "sigma": self.sigma,
            "min_region": self.min_region,
            "max_proposals": self.max_proposals,
            "min_size": self.min_size,
            "selectivesearch_version": package_version,
            "working_pixels": self.working_pixels,
        }

    def propose(self, image: np.ndarray | None, record: ImageRecord | None = None) -> Proposals:
        import selectivesearch

        if image is None:
            raise ValueError("selectivesearch needs the image")
        height, width = image.shape[:2]
        small, sx, sy = working_image(image, self.working_pixels)
        with warnings.catch_warnings():
            # The package calls skimage's local_binary_pattern on floats; its warning is about
            # the package's code, not the user's input.
            warnings.simplefilter("ignore", UserWarning)
            _, regions = selectivesearch.selective_search(
                small, scale=self.scale, sigma=self.sigma, min_size=self.min_region
            )
        rects = np.array([r["rect"] for r in regions], dtype=np.float32).reshape(-1, 4)
        # (x, y, w, h) over inclusive indices -> continuous x1 y1 x2 y2; later regions are
        # higher in its hierarchy, so they go first.
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:] + 1.0], axis=1)[::-1]
        boxes = to_original(boxes, sx, sy)
        return finalize_boxes(
            boxes, Proposals.ranked(boxes).scores, width, height, self.min_size, self.max_proposals
        )


def opencv_ximgproc() -> Any:
    """``cv2.ximgproc`` or a :class:`RcnnError` saying what to install."""
    try:
        import cv2
    except ImportError:
        raise RcnnError(OPENCV_CONTRIB_HINT) from None
    if not hasattr(cv2, "ximgproc"):
        raise RcnnError(OPENCV_CONTRIB_HINT)
    return cv2.ximgproc


@dataclass(frozen=True)
class OpenCVSelectiveSearch:
    """``rcnn propose --method opencv``: OpenCV-contrib's SelectiveSearchSegmentation."""

    mode: str = "fast"
    max_proposals: int = 2000
    min_size: float = 0.0
    working_pixels: int | None = DEFAULT_WORKING_PIXELS
    name: str = field(default="opencv", init=False)
    needs_image: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.mode not in ("single", "fast", "quality"):
            raise ValueError(f"mode {self.mode!r}: choose from single, fast, quality")
        opencv_ximgproc()

    def params(self) -> dict[str, Any]:
        import cv2

        return {
            "mode": self.mode,
            "max_proposals": self.max_proposals,
            "min_size": self.min_size,
            "opencv_version": cv2.__version__,
            "working_pixels": self.working_pixels,
        }

    def propose(self, image: np.ndarray | None, record: ImageRecord | None = None) -> Proposals:
        import cv2

        if image is None:
            raise ValueError("opencv needs the image")
        height, width = image.shape[:2]
        small, sx, sy = working_image(image, self.working_pixels)
        ss = opencv_ximgproc().segmentation.createSelectiveSearchSegmentation()
        ss.setBaseImage(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        {
            "single": ss.switchToSingleStrategy,
            "fast": ss.switchToSelectiveSearchFast,
            "quality": ss.switchToSelectiveSearchQuality,
        }[self.mode]()
        rects = np.asarray(ss.process(), dtype=np.float32).reshape(-1, 4)
        boxes = to_original(np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1), sx, sy)
        return finalize_boxes(
            boxes, Proposals.ranked(boxes).scores, width, height, self.min_size, self.max_proposals
        )
