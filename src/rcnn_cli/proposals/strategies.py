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
    # Selective Search Fast: 2 x 2 x 2 = 8 strategies.
    "fast": {"colour_spaces": ("hsv", "lab"), "ks": (50, 100), "similarities": ("CTSF", "TSF")},
    # Selective Search Quality: 5 x 4 x 4 = 80 strategies.
    "quality": {
        "colour_spaces": ("hsv", "lab", "rgi", "h", "i"),
        "ks": (50, 100, 150, 300),
        "similarities": ("CTSF", "TSF", "F", "S"),
    },
}


def strategies(mode: str) -> list[tuple[str, int, str]]:
    """The (colour space, k, similarity set) triples of a mode, in the order they run."""
    s = MODES[mode]
    return list(itertools.product(s["colour_spaces"], s["ks"], s["similarities"]))
