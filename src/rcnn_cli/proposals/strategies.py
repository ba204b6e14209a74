"""Selective Search's diversification strategies (Uijlings et al. 2013, section 3.2), as plain data.

A strategy is one (colour space, segmentation threshold k, similarity set) triple; a mode is the
product of its three lists. Kept apart from the kernels so that the command line can list the modes
without loading torch.
"""

from __future__ import annotations

import itertools

# Similarity sets by the paper's letters: Colour, Texture, Size, Fill.
SIMILARITY_TERMS = "CTSF"
MODES: dict[str, dict[str, tuple]] = {
    # The paper's single best strategy (Table 1-3): HSV, C+T+S+F, k = 100.
    "single": {"colour_spaces": ("hsv",), "ks": (100,), "similarities": ("CTSF",)},
    # Selective Search Fast, 2 colour spaces x 3 k x 2 similarity sets = 12 strategies. The paper's
    # Fast mode has k = 50 and 100 only: fine segmentations, whose hierarchies reach a large
    # object (one that fills much of a natural photo) through hundreds of merges, each a chance
    # to leak into the background; ours then missed such objects that OpenCV-contrib's fast mode
    # (k = 150, 300, 450) found. k = 200 starts from coarser regions and so adds different top
    # levels. It costs little: the sorted edges are shared by all k of a colour space, and a coarse
    # segmentation has few regions to group. (k = 400 as well helped large objects a little more,
    # but took places under a small cap from the small objects of BCCD: docs/BENCHMARKS.md.)
    "fast": {"colour_spaces": ("hsv", "lab"), "ks": (50, 100, 200), "similarities": ("CTSF", "TSF")},
    # Selective Search Quality: 5 x 4 x 4 = 80 strategies.
    "quality": {
        "colour_spaces": ("hsv", "lab", "rgi", "h", "i"),
        "ks": (50, 100, 150, 300),
        "similarities": ("CTSF", "TSF", "F", "S"),
    },
}

PAPER_FAST_KS = (50, 100)
"""The segmentation thresholds of the paper's Fast mode (``SelectiveSearch(ks=PAPER_FAST_KS)``)."""

NEAR_DUPLICATE_IOU = 0.9
"""Boxes whose IoU with a better-ranked box exceeds this are dropped before the cap: different
strategies often end in nearly the same box for one object, and every copy takes a place under
``max_proposals`` that another object could use."""


def strategies(mode: str) -> list[tuple[str, int, str]]:
    """The (colour space, k, similarity set) triples of a mode, in the order they run."""
    s = MODES[mode]
    return list(itertools.product(s["colour_spaces"], s["ks"], s["similarities"]))
