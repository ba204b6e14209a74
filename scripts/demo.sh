#!/usr/bin/env bash
# `make demo`: the whole chain on the real BCCD sample shipped in the package
# (src/rcnn_cli/data/sample, MIT, see its LICENSE). Every stage is a plain `rcnn` command
# that you can rerun by hand; outputs go to demo_out/ (override with DEMO_OUT=...).
# DEMO_ITERS sets the training length (the default 2000 takes the whole demo ~7 min on 2 quiet CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
RCNN=.venv/bin/rcnn
OUT=${DEMO_OUT:-demo_out}
ITERS=${DEMO_ITERS:-2000}
SAMPLE=$(.venv/bin/python -c "from rcnn_cli.data.sample import sample_dataset_path; print(sample_dataset_path())")

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "0/6 check the sample dataset" $RCNN check "$SAMPLE"
step "1/6 Selective Search proposals (fast mode), train images" \
    $RCNN propose "$SAMPLE" --split trainval -o "$OUT/proposals/trainval" --mode fast --eval
step "1/6 Selective Search proposals (fast mode), test images" \
    $RCNN propose "$SAMPLE" --split test -o "$OUT/proposals/test" --mode fast --eval
# A rerun of the demo continues the earlier training instead of starting over.
RESUME=(); [ -f "$OUT/run/checkpoints/last.pt" ] && RESUME=(--resume)
step "2/6 train Fast R-CNN (small backbone, from scratch, CPU)" \
    $RCNN train --dataset "$SAMPLE" --split trainval --proposals "$OUT/proposals/trainval" \
    --backbone small --iters "$ITERS" -o "$OUT/run" "${RESUME[@]}"
step "3/6 detect on the test images" \
    $RCNN detect --dataset "$SAMPLE" --split test --model "$OUT/run/model.pt" \
    --proposals "$OUT/proposals/test" -o "$OUT/detections"
step "4/6 evaluate the detections (VOC and COCO AP)" \
    $RCNN evaluate --dataset "$SAMPLE" --split test --detections "$OUT/detections/detections.json" \
    --output "$OUT/evaluation.json"
# The paper's fractions of the fc widths (fc6 1/4, fc7 1/16; the small head is 512 wide), then the
# factorized layers distilled towards the original on the training images (no labels needed).
step "5/6 compress fc6/fc7 by truncated SVD, distilled on the train images" \
    $RCNN compress "$OUT/run/model.pt" -o "$OUT/run/model_svd.pt" --svd-ranks fc6=128,fc7=32 \
    --distill-on "$SAMPLE" --split trainval --proposals "$OUT/proposals/trainval"
step "6/6 detect and evaluate with the compressed model" \
    $RCNN detect --dataset "$SAMPLE" --split test --model "$OUT/run/model_svd.pt" \
    --proposals "$OUT/proposals/test" -o "$OUT/detections_svd" --no-pictures --overwrite
step "6/6 detect and evaluate with the compressed model" \
    $RCNN evaluate --dataset "$SAMPLE" --split test --detections "$OUT/detections_svd/detections.json" \
    --no-coco --output "$OUT/evaluation_svd.json"

.venv/bin/python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
full, svd = (json.load(open(f"{out}/{name}")) for name in ("evaluation.json", "evaluation_svd.json"))
a, b = full["mean"], svd["mean"]
print(f"\nmAP on the {full['images']} test images, VOC area AP: {a['voc_ap']:.1f}, compressed model "
      f"{b['voc_ap']:.1f} (VOC07: {a['voc07_ap']:.1f} and {b['voc07_ap']:.1f}; COCO AP {a['coco_ap']:.1f})")
PY
printf 'Pictures with labelled boxes: %s/detections/pictures/\n' "$OUT"
printf 'Scores: %s/evaluation.json (compressed: %s/evaluation_svd.json)\n' "$OUT" "$OUT"
printf 'Model: %s/run/model.pt   Compressed: %s/run/model_svd.pt\n' "$OUT" "$OUT"
