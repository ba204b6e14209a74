"""Builds the compiled kernels in ops/ into ``rcnn_cli._C``.

CPU kernels (``ops/*.cpp``, ``ops/cpu/*.cpp``) are always built. The CUDA kernels
(``ops/cuda/*.cu`` with their torch glue ``ops/cuda/*.cpp``) are added whenever the
installed torch is a CUDA build and a CUDA toolkit is found (``CUDA_HOME``, else the one of
the nvcc on PATH, else /usr/local/cuda), GPU or not: a build machine or container often has
both but no device. ``FORCE_CUDA=0`` builds the CPU kernels only; ``FORCE_CUDA=1`` insists on CUDA
and fails with the reason when it cannot be built. Without a visible GPU the kernels are
compiled for ``TORCH_CUDA_ARCH_LIST`` (default 9.0: sm_90, the H100/H200).

The build prints one line saying which backends it builds and why, and the same line is
compiled into the extension (``rcnn --version`` shows it).
Everything else about the package lives in pyproject.toml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
OPS = ROOT / "ops"
# The header that carries the build's summary into ops/bindings.cpp; generated, never committed.
GENERATED = ROOT / "build" / "generated"
# No GPU to ask: the H100/H200 that the project's CUDA machines have.
DEFAULT_CUDA_ARCH = "9.0"


def _sources(pattern: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in OPS.glob(pattern))


def _is_toolkit(home: str | Path) -> bool:
    """nvcc and the runtime headers that the glue (ops/cuda/*_dispatch.cpp, via torch) includes."""
    home = Path(home)
    return (home / "bin" / "nvcc").is_file() and (home / "include" / "cuda_runtime_api.h").is_file()


def _pick_cuda_home() -> None:
    """Without CUDA_HOME (or CUDA_PATH), torch takes the folder two above the nvcc on PATH, else
    /usr/local/cuda. An nvcc on PATH may be a wrapper script (/usr/local/bin/nvcc here runs
    /usr/local/cuda-13.0/bin/nvcc), which makes /usr/local the toolkit, and the glue then fails on a
    missing cuda_runtime_api.h. So pick the first of those that is a whole toolkit, before torch looks."""
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    nvcc = shutil.which("nvcc")
    for home in ([Path(nvcc).parent.parent] if nvcc else []) + [Path("/usr/local/cuda")]:
        if _is_toolkit(home):
            os.environ["CUDA_HOME"] = str(home)
            return


def _nvcc_release(nvcc: Path) -> str | None:
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return None
    match = re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else None


def _arch_names(arch_list: str) -> str:
    """TORCH_CUDA_ARCH_LIST as nvcc names: '8.0;9.0+PTX' -> 'sm_80, sm_90+PTX'."""
    names = []
    for arch in re.split(r"[;\s]+", arch_list.strip()):
        match = re.fullmatch(r"(\d+)\.(\d+)(a?)(\+PTX)?", arch)
        names.append(f"sm_{match[1]}{match[2]}{match[3]}{match[4] or ''}" if match else arch)
    return ", ".join(names)


class Plan:
    """Which backends to build, the one line that says so and why, and the error when
    FORCE_CUDA=1 asks for a CUDA build that cannot be made."""

    def __init__(self) -> None:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME

        force = os.environ.get("FORCE_CUDA", "")
        self.cuda = False
        self.error: str | None = None
        if force not in ("", "0", "1"):
            self.error = f"FORCE_CUDA={force}: give 0 (CPU kernels only) or 1 (insist on CUDA)"
            self.line = "rcnn_cli._C: not built"
            return
        torch_id = f"torch {torch.__version__}"
        nvcc = Path(CUDA_HOME) / "bin" / "nvcc" if CUDA_HOME else None
        nvcc_release = _nvcc_release(nvcc) if nvcc is not None and nvcc.is_file() else None
        headers = CUDA_HOME is not None and _is_toolkit(CUDA_HOME)
        why_not = None
        if force == "0":
            why_not = "FORCE_CUDA=0"
        elif torch.version.cuda is None:
            why_not = f"{torch_id} is a CPU build"
        elif nvcc_release is None:
            why_not = f"{torch_id} has CUDA {torch.version.cuda} but nvcc was not found (set CUDA_HOME)"
        elif not headers:
            why_not = f"{CUDA_HOME} has nvcc but no include/cuda_runtime_api.h (set CUDA_HOME to the toolkit)"
        elif nvcc_release.split(".")[0] != torch.version.cuda.split(".")[0]:
            # torch refuses to build with another CUDA major version; say so instead of failing
            # an install whose CPU kernels would work.
            why_not = (
                f"nvcc {nvcc_release} at {CUDA_HOME} is not the CUDA {torch.version.cuda} of {torch_id} "
                "(set CUDA_HOME to a matching toolkit)"
            )
        if why_not is not None:
            self.line = f"rcnn_cli._C: CPU kernels only ({why_not})"
            if force == "1":
                self.error = f"FORCE_CUDA=1, but the CUDA kernels cannot be built: {why_not}"
            return
        self.cuda = True
        if not os.environ.get("TORCH_CUDA_ARCH_LIST"):
            # What torch would pick (the visible GPUs), or sm_90 without one, set here so
            # that the line below names exactly what nvcc compiles for.
            capabilities = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
            os.environ["TORCH_CUDA_ARCH_LIST"] = (
                ";".join(f"{major}.{minor}" for major, minor in sorted(capabilities)) or DEFAULT_CUDA_ARCH
            )
        arch = _arch_names(os.environ["TORCH_CUDA_ARCH_LIST"])
        self.line = (
            f"rcnn_cli._C: CPU and CUDA kernels ({torch_id}, nvcc {nvcc_release} at {CUDA_HOME}, arch {arch})"
        )

    def write_header(self) -> None:
        """build/generated/rcnn_cli_build_info.h: the line as a C string, rewritten only when it changes
        (ninja recompiles bindings.cpp then, and only then)."""
        text = (
            "// Generated by setup.py: what this build of rcnn_cli._C contains.\n"
            f"#define RCNN_CLI_BUILD_SUMMARY {json.dumps(self.line)}\n"
        )
        header = GENERATED / "rcnn_cli_build_info.h"
        if not header.is_file() or header.read_text() != text:
            GENERATED.mkdir(parents=True, exist_ok=True)
            header.write_text(text)


def _extensions() -> tuple[list, dict]:
    cpu_sources = _sources("*.cpp") + _sources("cpu/*.cpp")
    if not cpu_sources:
        return [], {}
    _pick_cuda_home()
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError as error:
        # The extension compiles against the torch it will run with, so that torch must be
        # installed first and the build must see it (no build isolation).
        sys.exit(
            f"rcnn_cli._C: building needs torch ({error}): install torch first, then "
            "`pip install --no-build-isolation .` (or `make install`)"
        )

    plan = Plan()

    class Build(BuildExtension):
        def run(self) -> None:
            # Here, not at import: pip also runs setup.py for metadata and the sdist, which
            # compile nothing and should neither fail on FORCE_CUDA=1 nor print the line.
            if plan.error is not None:
                sys.exit(f"rcnn_cli._C: {plan.error}")
            print(plan.line.replace(": ", ": building ", 1), file=sys.stderr, flush=True)
            plan.write_header()
            super().run()

    # -g0: the compiler line starts with Python's own CFLAGS, which ask for debug info (-g); for
    # torch's headers that makes each file compile ~2.5x slower (35 s -> 13 s for cpu/nms.cpp
    # here) and the library 17 MB. A release build needs none.
    cxx_flags = ["-O3", "-g0", "-std=c++20", "-fopenmp"]
    include_dirs = [str(OPS), str(GENERATED)]
    if plan.cuda:
        ext = CUDAExtension(
            "rcnn_cli._C",
            cpu_sources + _sources("cuda/*.cu") + _sources("cuda/*.cpp"),
            include_dirs=include_dirs,
            define_macros=[("WITH_CUDA", None)],
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension(
            "rcnn_cli._C",
            cpu_sources,
            include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=["-fopenmp"],
        )
    return [ext], {"build_ext": Build.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
