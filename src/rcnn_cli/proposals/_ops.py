"""Loads the compiled Selective Search kernels (ops/cpu/selective_search_*.cpp) into
``torch.ops.rcnn_cli``."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from typing import Any

import torch

from rcnn_cli.errors import RcnnError


@functools.cache
def ops() -> Any:
    """``torch.ops.rcnn_cli`` with the Selective Search kernels registered."""
    try:
        importlib.import_module("rcnn_cli._C")
    except ImportError:
        # A build without the Python module init still registers its ops when loaded as a library.
        spec = importlib.util.find_spec("rcnn_cli._C")
        if spec is None or spec.origin is None:
            raise RcnnError(
                "the compiled kernels (rcnn_cli._C) are missing; run `make install` "
                "or `python setup.py build_ext --inplace`"
            ) from None
        torch.ops.load_library(spec.origin)
    return torch.ops.rcnn_cli
