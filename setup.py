"""Builds the compiled kernels in ops/ into ``rcnn_cli._C``.

CPU kernels (``ops/*.cpp``, ``ops/cpu/*.cpp``) are always built. The CUDA kernels
(``ops/cuda/*.cu`` with their torch glue ``ops/cuda/*.cpp``) are added when the
installed torch has CUDA and nvcc is found, or when ``FORCE_CUDA=1``.
Everything else about the package lives in pyproject.toml.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
OPS = ROOT / "ops"


def _sources(pattern: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in OPS.glob(pattern))


def _extensions() -> tuple[list, dict]:
    cpu_sources = _sources("*.cpp") + _sources("cpu/*.cpp")
    if not cpu_sources:
        return [], {}
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    cxx_flags = ["-O3", "-std=c++20", "-fopenmp"]
    use_cuda = os.environ.get("FORCE_CUDA") == "1" or (torch.cuda.is_available() and CUDA_HOME is not None)
    if use_cuda:
        ext = CUDAExtension(
            "rcnn_cli._C",
            cpu_sources + _sources("cuda/*.cu") + _sources("cuda/*.cpp"),
            include_dirs=[str(OPS)],
            define_macros=[("WITH_CUDA", None)],
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension(
            "rcnn_cli._C",
            cpu_sources,
            include_dirs=[str(OPS)],
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=["-fopenmp"],
        )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
