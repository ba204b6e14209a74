"""``rcnn export``: a Fast R-CNN or Faster R-CNN checkpoint as an ONNX model or a TorchScript module
of its :mod:`~rcnn_cli.inference.export.network` (``DetectorNetwork``, ``ProposingDetectorNetwork``),
checked against the checkpoint before it is written.

ONNX: ``torch.onnx.export`` with the torch.export-based exporter (the maintained one; the TorchScript
exporter is deprecated), our ops translated to standard operators (:mod:`.onnx_ops`), H, W and R
dynamic (a Faster R-CNN's proposal count P is computed in the graph). TorchScript: ``torch.jit.trace``
(the networks have no data-dependent Python branch, so a trace is the whole graph; sizes that depend on
the data, as NMS's, are traced as operations, not constants), saved with ``torch.jit.save``; it calls
``torch.ops.rcnn_cli.*``, so whoever loads it imports the compiled kernels first (``import rcnn_cli._C``).

Both files carry the model's class names and preprocessing (``rcnn_cli.json``: ONNX metadata_props,
a TorchScript extra file), so that a consumer needs nothing else from this package.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.export.agreement import agreement
from rcnn_cli.inference.export.network import (
    DetectorNetwork,
    ProposingDetectorNetwork,
    as_tensors,
    check_exportable,
    example_inputs,
    network_for,
)

Network = DetectorNetwork | ProposingDetectorNetwork

FORMATS: tuple[str, ...] = ("onnx", "torchscript")

#: The key of the description in the ONNX metadata_props, and the TorchScript extra file's name.
METADATA_KEY = "rcnn_cli.json"

#: How far the exported model may be from the checkpoint on the check inputs: float32 arithmetic in
#: another order (scores are probabilities; boxes are pixels of images up to ~1000 px).
SCORE_TOLERANCE = 1e-4
BOX_TOLERANCE = 1e-2
#: A Faster R-CNN's proposals the export must have too: near-tied objectness may differ (agreement.py).
MIN_SHARED = 0.98

#: Check inputs: original image sizes (height, width) and proposal counts other than those traced
#: with, so that a graph that kept a traced size or count fails the check.
TRACE_SIZE, TRACE_ROIS = (480, 640), 8
CHECK_SIZE, CHECK_ROIS = (333, 517), 3

INSTALL_HINT = "pip install rcnn-cli[export]"


@dataclass(frozen=True)
class ExportResult:
    """What was written and how well it matches: max |exported − checkpoint| on the check inputs
    (``box_error`` over the boxes, and over a Faster R-CNN's proposals too)."""

    path: Path
    format: str
    seconds: float
    score_error: float
    box_error: float
    check: str  # the check inputs, in words
    shared: float = 1.0  # the share of the checkpoint's proposals the export has (agreement.py)


def format_of(output: Path, given: str | None) -> str:
    """``--format`` as given, else from the output's suffix (``.onnx``; anything else: TorchScript)."""
    if given is not None:
        return given
    return "onnx" if output.suffix.lower() == ".onnx" else "torchscript"


def default_output(model: Path, fmt: str) -> Path:
    """Beside the checkpoint: ``model.onnx`` or ``model.torchscript.pt`` for ``model.pt``."""
    return model.with_suffix(".onnx" if fmt == "onnx" else ".torchscript.pt")


def require_onnx() -> None:
    """One line naming what is missing for ONNX export and how to get it."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise RcnnError(f"ONNX export needs {', '.join(missing)}: {INSTALL_HINT}")


def export_model(
    model_path: Path, output: Path, fmt: str = "onnx", log: Callable[[str], None] = lambda _m: None
) -> ExportResult:
    """Read the checkpoint ``model_path``, export it as ``fmt`` to ``output`` (atomically, only once it
    matches the checkpoint on inputs it was not traced with) and say how close it is."""
    from rcnn_cli.artifacts import atomic_path, check_parent_folder
    from rcnn_cli.models import load_checkpoint

    if fmt not in FORMATS:
        raise RcnnError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt == "onnx":
        require_onnx()
    check_parent_folder(output)
    model, meta = load_checkpoint(model_path)
    config = meta["config"]
    check_exportable(config, model_path)
    network = network_for(model)
    (traced_with,) = example_inputs(config, [TRACE_SIZE], TRACE_ROIS)
    (checked_on,) = example_inputs(config, [CHECK_SIZE], CHECK_ROIS)
    description = describe(meta, model_path, network)
    start = time.perf_counter()
    with atomic_path(output) as tmp, torch.no_grad(), _quiet_exporter():
        if fmt == "onnx":
            log("tracing with torch.export, translating to ONNX ...")
            write_onnx(network, traced_with, tmp, description)
            got = run_onnx(tmp, checked_on, network)
        else:
            log("tracing with torch.jit.trace ...")
            write_torchscript(network, traced_with, tmp, description)
            got = run_torchscript(tmp, checked_on, network.input_names)
        want = [t.numpy() for t in network(*as_tensors(checked_on, network.input_names))]
        close = agreement(
            dict(zip(network.output_names, got, strict=True)),
            dict(zip(network.output_names, want, strict=True)),
            BOX_TOLERANCE,
        )
        if close.shared < MIN_SHARED:
            raise RcnnError(
                f"the exported {fmt} model has {close.shared:.1%} of {model_path}'s proposals (at least "
                f"{MIN_SHARED:.0%} needed): not written"
            )
        if not (close.score_error <= SCORE_TOLERANCE and close.box_error <= BOX_TOLERANCE):
            raise RcnnError(
                f"the exported {fmt} model differs from {model_path} by {close.score_error:.2g} in scores "
                f"and {close.box_error:.2g} px in boxes (allowed {SCORE_TOLERANCE:g}, {BOX_TOLERANCE:g}): "
                "not written"
            )
    height, width = CHECK_SIZE
    given = (
        "its RPN's proposals" if isinstance(network, ProposingDetectorNetwork) else f"{CHECK_ROIS} proposals"
    )
    return ExportResult(
        path=output,
        format=fmt,
        seconds=time.perf_counter() - start,
        score_error=close.score_error,
        box_error=close.box_error,
        shared=close.shared,
        check=f"a {width}x{height} image with {given}",
    )


def describe(meta: dict[str, Any], model_path: Path, network: Network) -> dict[str, Any]:
    """What a consumer of the exported file needs to know (stored in it as ``rcnn_cli.json``)."""
    from dataclasses import asdict

    from rcnn_cli import __version__

    config = meta["config"]
    rpn = getattr(config, "rpn", None)
    method = getattr(config, "method", "fast_rcnn")
    warps = method == "rcnn"
    return {
        "format": "rcnn-cli detector network",
        "format_version": 1,
        "exported_by": f"rcnn-cli {__version__}",
        "source": model_path.name,
        "class_names": list(meta["class_names"]),
        "svd_ranks": dict(meta.get("svd_ranks") or {}),
        "network": "faster_rcnn" if rpn is not None else method,
        # What ``scores`` are: the head's softmax, or R-CNN's/SPPnet's SVM margins through a logistic.
        "scores": "svm_sigmoid" if method in ("rcnn", "sppnet") else "softmax",
        "inputs": list(network.input_names),
        "outputs": list(network.output_names),
        # The RPN's test-time proposal layer inside the graph (Faster R-CNN only).
        "proposal_layer": asdict(rpn.proposals) if rpn is not None else None,
        "preprocess": {
            "color": "RGB, values scaled to [0, 1], then (x - pixel_mean) / pixel_std",
            # R-CNN reads the image at its own size (im_scale 1) and warps each region to a window.
            "scale": None if warps else int(config.scales[0]),
            "max_size": None if warps else int(config.max_size),
            "window": {"size": config.region_size, "context_padding": config.region_padding}
            if warps
            else None,
            "pixel_mean": list(config.pixel_mean),
            "pixel_std": list(config.pixel_std),
        },
        "postprocess": {"score_threshold": 0.05, "nms_iou": 0.3, "max_detections": 100},
    }


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporters' own chatter (progress lines, torchvision-not-installed notices, TracerWarnings of
    our shape checks, which are static) stays off the command's output; errors still raise."""
    loggers = [
        logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch.fx", "torch._dynamo")
    ]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            for logger in loggers:
                logger.setLevel(logging.ERROR)
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


# --- ONNX -----------------------------------------------------------------------------------------


def write_onnx(network: Network, inputs: dict[str, np.ndarray], path: Path, description: dict) -> None:
    """``network`` as one ONNX file (weights inside) with its dynamic axes (H, W; R for Fast R-CNN)."""
    from rcnn_cli.inference.export.onnx_ops import OPSET, check_no_argmax, translation_table

    try:
        program = torch.onnx.export(
            network,
            as_tensors(inputs, network.input_names),
            input_names=list(network.input_names),
            output_names=list(network.output_names),
            dynamic_shapes=network.dynamic_shapes,
            custom_translation_table=translation_table(),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    except Exception as exc:  # the exporter's errors are pages long: keep their first line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RcnnError(f"ONNX export failed: {first[:300]}") from exc
    check_no_argmax(program.exported_program)
    program.model.metadata_props[METADATA_KEY] = json.dumps(description)
    program.save(str(path), external_data=False)


def run_onnx(path: Path, inputs: dict[str, np.ndarray], network: Network) -> list[np.ndarray]:
    """The ONNX model at ``path`` (exported from ``network``) run by onnxruntime (CPU) on ``inputs``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(network.output_names), {name: inputs[name] for name in network.input_names})


# --- TorchScript ----------------------------------------------------------------------------------


def write_torchscript(network: Network, inputs: dict[str, np.ndarray], path: Path, description: dict) -> None:
    """``network`` traced on ``inputs``, saved to ``path``. jit.trace's own check (a second trace, compared
    node by node, and a run) is left to the tests: :func:`export_model` checks the saved file itself, on
    other inputs, and each check is a whole forward pass (seconds for VGG16 on a CPU)."""
    traced = torch.jit.trace(network, as_tensors(inputs, network.input_names), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={METADATA_KEY: json.dumps(description)})


def run_torchscript(path: Path, inputs: dict[str, np.ndarray], names: tuple[str, ...]) -> list[np.ndarray]:
    """The TorchScript file at ``path``, loaded afresh, run on ``inputs`` (those ``names``, in order)."""
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return [t.numpy() for t in module(*as_tensors(inputs, names))]
