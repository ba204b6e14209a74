"""Loads the compiled kernels (``rcnn_cli._C``) on first use.

Importing :mod:`rcnn_cli.ops` never fails: the extension is imported the first
time an op runs. When it was not built, that call raises an :class:`RcnnError`
that says how to build it, instead of an ImportError deep in a stack trace.
Loading also registers the Python side of every op (autograd formulas, fake
kernels for torch.compile), exactly once.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

import torch

from rcnn_cli.errors import RcnnError


@functools.cache
def load() -> ModuleType:
    """Import ``rcnn_cli._C`` and register the ops' autograd and fake kernels."""
    try:
        _C = importlib.import_module("rcnn_cli._C")
    except ImportError as error:
        raise RcnnError(
            f"the compiled kernels of rcnn_cli.ops (rcnn_cli._C) are not built ({error}); "
            "run `make install` in the repository"
        ) from error
    from rcnn_cli.ops import _registrations

    _registrations.register()
    return _C


def ops() -> torch._ops._OpNamespace:
    """The ``torch.ops.rcnn_cli`` namespace, loading the extension if needed."""
    load()
    return torch.ops.rcnn_cli


def has_kernel(op: str, device: torch.device) -> bool:
    """Whether ``rcnn_cli::op`` has a kernel for ``device`` (CUDA only when built with it)."""
    load()
    key = "CUDA" if device.type == "cuda" else device.type.upper()
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"rcnn_cli::{op}", key)


def capturing() -> bool:
    """Whether the ops are being recorded into a graph rather than run: ``torch.jit.trace``/``script``,
    ``torch.export`` (and so the ONNX exporter) or ``torch.compile``.

    A recorded graph must not depend on what only this one run sees: the values of the RoIs (their
    checks read them back, a data-dependent branch that ``torch.export`` refuses) or the grad mode
    (``jit.trace`` checks its trace by running it again under ``no_grad``, so a grad-dependent choice of
    kernel records two different graphs)."""
    return bool(torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling())


def compiled_backends() -> tuple[str, ...]:
    """The backends that ``rcnn_cli._C`` has kernels for, as torch's dispatcher sees them:
    ``("CPU",)`` or ``("CPU", "CUDA")``. A CUDA kernel is there when the extension was built
    against a CUDA torch with nvcc, whether or not this machine has a GPU."""
    load()
    has_kernel_for = torch._C._dispatch_has_kernel_for_dispatch_key
    return tuple(key for key in ("CPU", "CUDA") if has_kernel_for("rcnn_cli::roi_pool", key))


def build_summary() -> str:
    """The line that setup.py printed when it built ``rcnn_cli._C`` (which backends, the torch,
    nvcc and GPU architectures it compiled with), or why the extension cannot be loaded."""
    try:
        _C = load()
    except RcnnError as error:
        return f"rcnn_cli._C: {error}"
    return getattr(_C, "build_summary", "rcnn_cli._C: built with no build summary (rebuild it: make install)")


def values_only(input: torch.Tensor) -> bool:
    """Whether a max pooling of ``input`` may skip its argmax: nothing will ask for a gradient
    (no grad mode, inference mode, or an input that does not require one, e.g. cached features),
    ``rcnn_cli::_roi_max_pool_values`` has a kernel for the device (the CPU), and the call is not
    being recorded into a graph (:func:`capturing`: a graph keeps the public ops, which have kernels
    for every device and an ONNX translation)."""
    if capturing() or (torch.is_grad_enabled() and input.requires_grad):
        return False
    return has_kernel("_roi_max_pool_values", input.device)
