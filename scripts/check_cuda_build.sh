#!/usr/bin/env bash
# `make check-cuda-build`: the whole extension compiled against a CUDA torch, on a machine without a GPU.
#
# A CPU build never compiles the CUDA glue (ops/cuda/*_dispatch.cpp, against torch's CUDA headers),
# and tests/ops/test_cuda.py compiles the .cu files with plain nvcc only. This builds a wheel with
# FORCE_CUDA=1 (fails rather than fall back to CPU) for sm_90 in a venv of its own with a CUDA torch,
# installs it there, checks that every op has its CUDA kernel registered, and runs tests/ops against
# the installed copy on the CPU (CUDA parity tests skip without a device).
#
# Settings: CUDA_TORCH (default torch==2.14.1, a CUDA 13 build), CUDA_HOME (default /usr/local/cuda-13.0),
# TORCH_CUDA_ARCH_LIST (default 9.0), CHECK_CUDA_DIR (default build/check-cuda: the venv, kept between
# runs so that a rerun installs nothing; the source copy and its ninja objects, rebuilt incrementally).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
WORK=${CHECK_CUDA_DIR:-build/check-cuda}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
VENV=$WORK/venv
PY=$VENV/bin/python
SRC=$WORK/src
CUDA_TORCH=${CUDA_TORCH:-torch==2.14.1}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda-13.0}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export FORCE_CUDA=1
if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    echo "check-cuda-build: no nvcc at $CUDA_HOME/bin/nvcc: set CUDA_HOME to a CUDA toolkit matching $CUDA_TORCH" >&2
    exit 1
fi
# nvcc on PATH: tests/ops/test_cuda.py then also compiles each .cu and shared header on its own.
export PATH=$CUDA_HOME/bin:$PATH

start=$SECONDS
step() { printf '== %4ds  %s\n' "$((SECONDS - start))" "$*"; }
# pip, without the warning it prints per package for each index folder of pip.conf that lacks it.
pip() { "$PY" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }; }

step "venv $VENV with $CUDA_TORCH"
test -x "$PY" || "$PYTHON" -m venv "$VENV"
pip install -q "$CUDA_TORCH" "setuptools>=77" wheel ninja

step "copy of the working tree (tracked and untracked, not ignored) -> $SRC"
# Its own tree and build/ folder: the CUDA objects never mix with the CPU build's in the checkout.
bash scripts/copy_worktree.sh "$SRC"

step "wheel with CUDA kernels (FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, CUDA_HOME=$CUDA_HOME)"
rm -rf "$WORK/dist"
if ! "$PY" -m pip wheel -v --no-build-isolation --no-deps -w "$WORK/dist" "$SRC" >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log"
    echo "check-cuda-build: the build failed (whole log: $WORK/build.log)" >&2
    exit 1
fi
grep -m1 "rcnn_cli._C: building" "$WORK/build.log" | sed 's/^ */   /'
printf '   compiled (objects in build/): '
(cd "$SRC/build" && find . -name '*.o' | sed 's|.*/ops/||; s|\.o$||' | sort | tr '\n' ' ')
echo

step "install the wheel into the venv (and the package's dependencies)"
WHEEL=$(ls "$WORK"/dist/rcnn_cli-*.whl)
pip install -q --no-deps --force-reinstall "$WHEEL"
pip install -q "$WHEEL[dev]"

step "import the installed copy; CUDA kernels registered for every op"
(cd "$WORK" && "$PY" - "$VENV" <<'EOF'
import sys

import torch

import rcnn_cli
from rcnn_cli import ops

assert torch.version.cuda, f"torch {torch.__version__} is not a CUDA build"
print(f"   torch {torch.__version__}, CUDA {torch.version.cuda}, GPU visible: {torch.cuda.is_available()}")
assert rcnn_cli.__file__.startswith(sys.argv[1]), f"not the installed copy: {rcnn_cli.__file__}"
print("  ", ops.build_summary())
assert ops.compiled_backends() == ("CPU", "CUDA"), ops.compiled_backends()
cuda_ops = ["roi_pool", "spp_pool", "_roi_max_pool_backward", "roi_align", "_roi_align_backward", "nms"]
missing = [op for op in cuda_ops if not torch._C._dispatch_has_kernel_for_dispatch_key(f"rcnn_cli::{op}", "CUDA")]
assert not missing, f"no CUDA kernel for {missing}"
print(f"   CUDA kernels registered: {', '.join(cuda_ops)}")
x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
rois = torch.tensor([[0, 0, 0, 7, 7], [1, 2, 2, 5, 6]], dtype=torch.float32)
print(f"   CPU roi_pool from the CUDA build: {tuple(ops.roi_pool(x, rois, 2, 1.0).shape)}")
EOF
)
"$VENV/bin/rcnn" --version | sed 's/^/   /'

step "tests/ops against the installed copy (the source copy's tests, run from $SRC: src/ is not on sys.path)"
(cd "$SRC" && OMP_NUM_THREADS=1 "$PY" -m pytest -q -p no:cacheprovider tests/ops)

step "check-cuda-build: passed"
