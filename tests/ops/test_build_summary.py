"""What the compiled extension says about itself (rcnn --version) agrees with the dispatcher."""

from __future__ import annotations

import torch

from rcnn_cli.ops import build_summary, compiled_backends


def test_compiled_backends_are_what_the_dispatcher_has():
    backends = compiled_backends()
    assert backends[0] == "CPU"
    assert set(backends) <= {"CPU", "CUDA"}
    for op in ("roi_pool", "spp_pool", "roi_align", "nms"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"rcnn_cli::{op}", "CPU")


def test_build_summary_names_the_backends_built():
    summary = build_summary()
    if "CUDA" in compiled_backends():
        assert summary.startswith("rcnn_cli._C: CPU and CUDA kernels (torch "), summary
        assert "nvcc " in summary and "arch sm_" in summary
    else:
        assert summary.startswith("rcnn_cli._C: CPU kernels only ("), summary
