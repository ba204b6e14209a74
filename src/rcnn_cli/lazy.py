"""Package ``__init__`` files that gather names from their modules import each on first use.

So ``import rcnn_cli.models.specs`` (plain data) does not load torch through ``rcnn_cli/models/__init__``,
and ``rcnn --help`` stays fast. A package writes::

    __getattr__, __all__ = lazy_names(__name__, {"FastRCNN": "fast_rcnn", ...})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` (PEP 562) that imports ``package.<homes[name]>`` when ``name`` is first
    asked for, and the matching ``__all__``."""

    def attribute(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return attribute, sorted(homes)
