#!/usr/bin/env bash
# make gpu-check: everything a GPU machine should confirm, in one call that fits its 8 minutes.
#
#   1. build     the extension with its CUDA kernels (the machine's torch and nvcc), into the source
#                tree (pip install --no-deps --no-build-isolation -e .; nothing is downloaded)
#   2. tests     the CUDA tests: CPU/CUDA parity of every op, float64 gradcheck on the GPU, and the
#                rest of tests/ops
#   3. ops       bench/ops.py --device cuda, against torchvision's ops where torchvision imports
#   4. detector  bench/detector_speed.py: VGG16 at 600/1000, training it/s and detection ms per image
#
# Each part's output goes to $OUT/<part>.txt (OUT: the device tool's folder; else build/gpu-check).
# Without a GPU (a dry run, e.g. here) the CUDA parts say they are skipped and the rest runs small,
# so that the script itself is checked before a GPU is lent. Carried wheels (.whl/, see
# /work/.library/device/README.md: pycocotools and selectivesearch are missing on the lent H200)
# are installed first when present. The exit status is the number of parts that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-build/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi

cuda=$($PY -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
failed=0
part() {  # part NAME SECONDS COMMAND...: run one part under a time limit, its output in $OUT/NAME.txt
    local name=$1 limit=$2
    shift 2
    local started=$SECONDS
    echo "== $name: $*" | tee "$OUT/$name.txt"
    timeout "$limit" "$@" >>"$OUT/$name.txt" 2>&1
    local status=$?
    tail -n 15 "$OUT/$name.txt"
    echo "== $name: exit $status after $((SECONDS - started)) s" | tee -a "$OUT/$name.txt"
    [ "$status" -eq 0 ] || failed=$((failed + 1))
}

if [ "$cuda" = 1 ]; then
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # H100/H200 (sm_90)
    export MAX_JOBS=${MAX_JOBS:-$(nproc)}  # ninja's compile jobs: the lent machine has 16 cores
    part build 240 $PY -m pip install --no-deps --no-build-isolation -e .
    part tests 120 $PY -m pytest -q -p no:cacheprovider tests/ops
    part ops 90 $PY bench/ops.py --device cuda --repeat 20
    part detector 150 $PY bench/detector_speed.py --device cuda --iters 40
else
    echo "no CUDA device: a dry run (CUDA build and CUDA tests skipped, the benchmarks run small on the CPU)" \
        | tee "$OUT/dry-run.txt"
    part tests 300 $PY -m pytest -q -p no:cacheprovider tests/ops/test_cuda.py
    part ops 300 $PY bench/ops.py --device cpu --repeat 1 --threads 1
    part detector 300 $PY bench/detector_speed.py --device cpu --backbone small --iters 2 --warmup 1 \
        --proposals 300 --images 3
fi
echo "gpu-check: $failed part(s) failed; outputs in $OUT"
exit "$failed"
