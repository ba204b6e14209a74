"""``rcnn export``: a Fast R-CNN checkpoint as an ONNX model or a TorchScript module, from the
preprocessed image and its proposals to class scores and boxes (everything before NMS).

:mod:`.network` is the exported network and its inputs, :mod:`.onnx_ops` our ops in ONNX operators,
:mod:`.writer` the export and its check. Names are imported on first use (onnx and torch are heavy).
"""

from __future__ import annotations

from rcnn_cli.lazy import lazy_names

_HOMES = {
    "DetectorNetwork": "network",
    "ProposingDetectorNetwork": "network",
    "network_for": "network",
    "INPUT_NAMES": "network",
    "OUTPUT_NAMES": "network",
    "network_inputs": "network",
    "ExportResult": "writer",
    "FORMATS": "writer",
    "METADATA_KEY": "writer",
    "default_output": "writer",
    "export_model": "writer",
    "format_of": "writer",
}

__getattr__, __all__ = lazy_names(__name__, _HOMES)
