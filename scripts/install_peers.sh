#!/usr/bin/env bash
# `make peers`: the venv in which bench/ scripts run our code beside its peers, in one process.
#
# .venv-peers holds torch 2.14.1 with torchvision 0.29.1 (the highest pair pip's cap allows here; a
# CUDA build that runs on the CPU), opencv-contrib-python-headless (cv2.ximgproc: OpenCV's Selective
# Search, the peer of bench/proposals.py) and rcnn_cli itself, compiled against that torch. It stays
# apart from .venv so that torchvision never reaches the package's own environment.
#
# rcnn_cli is built from a copy of the working tree under build/peers (as make check-cuda-build does):
# the in-place extension of .venv (torch 2.13) and this one (torch 2.14.1) would otherwise share a file
# name and ninja's object folder. CPU kernels only (FORCE_CUDA=0): the peers are compared on the CPU.
#
# opencv-contrib replaces our opencv-python-headless dependency (both install the module cv2, and the
# plain one would shadow ximgproc), so the package goes in with --no-deps and its other dependencies
# are listed from pyproject.toml (with tomllib: Python 3.11 or later).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${PEERS_VENV:-.venv-peers}
PY=$VENV/bin/python
WORK=build/peers
pip() { "$PY" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }; }

test -x "$PY" || "$PYTHON" -m venv "$VENV"
echo "peers: torch 2.14.1, torchvision 0.29.1, opencv-contrib in $VENV"
pip install -q "torch==2.14.1" "torchvision==0.29.1" opencv-contrib-python-headless "setuptools>=77" wheel ninja

deps=$("$PY" - <<'PY'
import tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
skip = ("torch", "opencv-python-headless")  # torch is pinned above; opencv-contrib replaces cv2
print("\n".join(d for d in project["dependencies"] if not d.startswith(skip)))
PY
)
mapfile -t deps <<<"$deps"
pip install -q "${deps[@]}"

echo "peers: rcnn_cli built against torch 2.14.1 from a copy in $WORK/src"
bash scripts/copy_worktree.sh "$WORK/src"
rm -rf "$WORK/dist"
if ! FORCE_CUDA=0 "$PY" -m pip wheel --no-build-isolation --no-deps -w "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log"
    echo "peers: the build of rcnn_cli failed (whole log: $WORK/build.log)" >&2
    exit 1
fi
pip install -q --no-deps --force-reinstall "$WORK"/dist/rcnn_cli-*.whl

# Run from the repository root, bench/ scripts would import ./src only if it were on the path; it is
# not, so they get this installed copy. Say what each peer is.
"$PY" - <<'PY'
import cv2
import torch
import torchvision

import rcnn_cli.ops  # noqa: F401  (loads the compiled kernels)

print(f"peers: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"opencv {cv2.__version__} (ximgproc: {hasattr(cv2, 'ximgproc')}), rcnn_cli from {rcnn_cli.ops.__file__}")
PY
