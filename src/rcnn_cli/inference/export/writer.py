"""``rcnn export``: a Fast R-CNN checkpoint as an ONNX model or a TorchScript module of
:class:`~rcnn_cli.inference.export.network.DetectorNetwork`, checked against the checkpoint before it
is written.

ONNX: ``torch.onnx.export`` with the torch.export-based exporter (the maintained one; the TorchScript
exporter is deprecated), our ops translated to standard operators (:mod:`.onnx_ops`), H, W and R
dynamic. TorchScript: ``torch.jit.trace`` (the network has no data-dependent branch, so a trace is the
whole graph), saved with ``torch.jit.save``; it calls ``torch.ops.rcnn_cli.*``, so whoever loads it
imports the compiled kernels first (``import rcnn_cli._C``).

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
from rcnn_cli.inference.export.network import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    DetectorNetwork,
    as_tensors,
    check_exportable,
    example_inputs,
)

FORMATS: tuple[str, ...] = ("onnx", "torchscript")

#: The key of the description in the ONNX metadata_props, and the TorchScript extra file's name.
METADATA_KEY = "rcnn_cli.json"

#: How far the exported model may be from the checkpoint on the check inputs: float32 arithmetic in
#: another order (scores are probabilities; boxes are pixels of images up to ~1000 px).
SCORE_TOLERANCE = 1e-4
BOX_TOLERANCE = 1e-2

#: Check inputs: original image sizes (height, width) and proposal counts other than those traced
#: with, so that a graph that kept a traced size or count fails the check.
TRACE_SIZE, TRACE_ROIS = (480, 640), 8
CHECK_SIZE, CHECK_ROIS = (333, 517), 3

INSTALL_HINT = "pip install rcnn-cli[export]"


@dataclass(frozen=True)
class ExportResult:
    """What was written and how well it matches: max |exported − checkpoint| on the check inputs."""

    path: Path
    format: str
    seconds: float
    score_error: float
    box_error: float
    check: str  # the check inputs, in words


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
    network = DetectorNetwork(model)
    (traced_with,) = example_inputs(config, [TRACE_SIZE], TRACE_ROIS)
    (checked_on,) = example_inputs(config, [CHECK_SIZE], CHECK_ROIS)
    description = describe(meta, model_path)
    start = time.perf_counter()
    with atomic_path(output) as tmp, torch.no_grad(), _quiet_exporter():
        if fmt == "onnx":
            log("tracing with torch.export, translating to ONNX ...")
            write_onnx(network, traced_with, tmp, description)
            got = run_onnx(tmp, checked_on)
        else:
            log("tracing with torch.jit.trace ...")
            write_torchscript(network, traced_with, tmp, description)
            got = run_torchscript(tmp, checked_on)
        want = [t.numpy() for t in network(*as_tensors(checked_on))]
        score_error, box_error = (
            float(np.abs(g - w).max(initial=0.0)) for g, w in zip(got, want, strict=True)
        )
        if not (score_error <= SCORE_TOLERANCE and box_error <= BOX_TOLERANCE):
            raise RcnnError(
                f"the exported {fmt} model differs from {model_path} by {score_error:.2g} in scores and "
                f"{box_error:.2g} px in boxes (allowed {SCORE_TOLERANCE:g}, {BOX_TOLERANCE:g}): not written"
            )
    height, width = CHECK_SIZE
    return ExportResult(
        path=output,
        format=fmt,
        seconds=time.perf_counter() - start,
        score_error=score_error,
        box_error=box_error,
        check=f"a {width}x{height} image with {CHECK_ROIS} proposals",
    )


def describe(meta: dict[str, Any], model_path: Path) -> dict[str, Any]:
    """What a consumer of the exported file needs to know (stored in it as ``rcnn_cli.json``)."""
    from rcnn_cli import __version__

    config = meta["config"]
    return {
        "format": "rcnn-cli detector network",
        "format_version": 1,
        "exported_by": f"rcnn-cli {__version__}",
        "source": model_path.name,
        "class_names": list(meta["class_names"]),
        "svd_ranks": dict(meta.get("svd_ranks") or {}),
        "inputs": list(INPUT_NAMES),
        "outputs": list(OUTPUT_NAMES),
        "preprocess": {
            "color": "RGB, values scaled to [0, 1], then (x - pixel_mean) / pixel_std",
            "scale": int(config.scales[0]),
            "max_size": int(config.max_size),
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


def write_onnx(
    network: DetectorNetwork, inputs: dict[str, np.ndarray], path: Path, description: dict
) -> None:
    """``network`` as one ONNX file (weights inside) with dynamic H, W and R."""
    from rcnn_cli.inference.export.onnx_ops import OPSET, check_no_argmax, translation_table

    dynamic = ({2: "height", 3: "width"}, {0: "rois"}, None, None)
    try:
        program = torch.onnx.export(
            network,
            as_tensors(inputs),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=dynamic,
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


def run_onnx(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The ONNX model at ``path`` run by onnxruntime (CPU) on ``inputs``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(OUTPUT_NAMES), {name: inputs[name] for name in INPUT_NAMES})


# --- TorchScript ----------------------------------------------------------------------------------


def write_torchscript(
    network: DetectorNetwork, inputs: dict[str, np.ndarray], path: Path, description: dict
) -> None:
    """``network`` traced on ``inputs``, saved to ``path``. jit.trace's own check (a second trace, compared
    node by node, and a run) is left to the tests: :func:`export_model` checks the saved file itself, on
    other inputs, and each check is a whole forward pass (seconds for VGG16 on a CPU)."""
    traced = torch.jit.trace(network, as_tensors(inputs), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={METADATA_KEY: json.dumps(description)})


def run_torchscript(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The TorchScript file at ``path``, loaded afresh, run on ``inputs``."""
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return [t.numpy() for t in module(*as_tensors(inputs))]
