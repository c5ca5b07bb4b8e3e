#!/bin/sh
# The bundled demo models' recipe from scratch (experiment/demo/README.md, "The bundled models"), then the main job
# on them: GAN stages 1-4 in OUTDIR/s1..s4, the classifier in OUTDIR/clf, explain.sh's output in OUTDIR.
# Usage: sh experiment/demo/train.sh OUTDIR (after python -m synthhist.demo.data experiment/demo/data).
# DEMO_KIMG: the GAN's length over all four stages, split as the recipe splits its 356.352 kimg (the default: the
# whole recipe, about 5.3 h on 2 cores); each stage at least one batch. Rerun after an interruption, it continues.
# EXP: the configs' folder (default: here).
set -eu
OUT=$1; PY=${PY:-python3}; HERE=$(dirname "$0"); EXP=${EXP:-$HERE}; R=$HERE/../..
# Stage ends in kimg (stages 3-4 continue stage 2's kimg count), whole batches of 32.
ends=$($PY -c "
import math, sys
recipe, b = (282.624, 28.672, 8.192, 36.864), 0.032   # the stage lengths (kimg), a batch (kimg)
try:
    f = float(sys.argv[1]) / sum(recipe) if sys.argv[1] else 1.0
except ValueError:
    f = 0
if not (f > 0 and math.isfinite(f)):
    sys.exit(f'DEMO_KIMG={sys.argv[1]!r}: give the GAN\'s length in kimg, a number above 0')
n = [max(1, math.ceil(k * f / b - 1e-9)) for k in recipe]
print(*(f'{x * b:.3f}' for x in (n[0], n[1], n[1] + n[2], n[1] + n[2] + n[3])))" "${DEMO_KIMG:-}")
set -- $ends
last() { ls -d "$1"/gan/*-"$2"/network-snapshot-* | tail -n 1; }
# stage OUTDIR RESUME ARGS...: rerun, a stage continues its own run (--resume latest) instead.
stage() {
    dir=$1; resume=$2; shift 2
    if ls -d "$dir"/gan/*/network-snapshot-* > /dev/null 2>&1; then resume=latest; fi
    $PY "$R/train_gan.py" --outdir "$dir" --workers 1 ${resume:+--resume "$resume"} "$@"
}

# 1. 64 px from scratch; 2. 128 px from stage 1 (transfer: every layer the two share)
stage "$OUT/s1" "" --exp "$EXP/bundle_gan.json" --res 64 --kimg "$1"
stage "$OUT/s2" "$(last "$OUT/s1" DEMO_BUNDLE)/network.json" --exp "$EXP/bundle_gan.json" --res 128 --kimg "$2"
# 3. the matching-aware discriminator (mismatch 1); 4. the term at 0.25
stage "$OUT/s3" "$(last "$OUT/s2" DEMO_BUNDLE)" --exp "$EXP/bundle_gan_mismatch.json" --res 128 --kimg "$3"
stage "$OUT/s4" "$(last "$OUT/s3" DEMO_BUNDLE_MISMATCH)" --exp "$EXP/bundle_gan_mismatch_low.json" --res 128 --kimg "$4"
$PY "$R/train_classifier.py" --exp "$EXP/demo_classifier.json" --outdir "$OUT/clf" --weights none --workers 1

PY="$PY" REAL="$OUT/s4/tfrecords" ANNOTATIONS="$EXP/data/labels.csv" OUTCOME=tissue \
    sh "$HERE/explain.sh" "$OUT" "$(last "$OUT/s4" DEMO_BUNDLE_MISMATCH_LOW)" "$(ls -d "$OUT"/clf/models/*-HP0 | tail -n 1)"
