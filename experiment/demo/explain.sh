#!/bin/sh
# The main job on a GAN and a classifier: images of both classes, a contact sheet (real | synthetic tiles of both
# classes), class-blend videos + strips, concordance CSV, interpolation-probability plot.
# Usage: sh experiment/demo/explain.sh OUTDIR [NETWORK] [CLASSIFIER] (default: demo).
# SEEDS (default 0-63): the concordance search (interpolation_probability.py reuses concordance.py's CSV).
# REAL, ANNOTATIONS, OUTCOME (optional): the contact sheet's real tiles (python -m synthhist.demo.sheet --data,
# --annotations, --outcome; e.g. a project's tfrecords/ folder); without REAL they are painted demo tissue.
set -eu
OUT=$1; NET=${2:-demo}; CLF=${3:-demo}; SEEDS=${SEEDS:-0-63}; PY=${PY:-python3}
R=$(dirname "$0")/../..   # the repository root
$PY "$R/generate.py" --network "$NET" --class 0 --seeds 0-7 --outdir "$OUT/images/class0"
$PY "$R/generate.py" --network "$NET" --class 1 --seeds 0-7 --outdir "$OUT/images/class1"
PYTHONPATH="$R${PYTHONPATH:+:$PYTHONPATH}" $PY -m synthhist.demo.sheet --network "$NET" --out "$OUT/contact_sheet.png" \
    --blend "$OUT/class_blend.png" ${REAL:+--data "$REAL"} ${ANNOTATIONS:+--annotations "$ANNOTATIONS"} \
    ${OUTCOME:+--outcome "$OUTCOME"}
# 4 s videos (72 frames at 18 fps) and 8-frame strips; both shown at 256 px or more (interpolate.py --size)
$PY "$R/interpolate.py" --network "$NET" --seeds 0-3 --steps 72 --fps 18 --video --outdir "$OUT/blend"
$PY "$R/interpolate.py" --network "$NET" --seeds 0-3 --steps 8 --merge --outdir "$OUT/blend"
$PY "$R/concordance.py" --network "$NET" --classifier "$CLF" --seeds "$SEEDS" --out "$OUT/concordance.csv"
# The prediction curves need a concordant seed; a briefly trained pair (make demo-train DEMO_KIMG=...) may have none.
PLOT=""
if grep -qE ',(strong|weak)$' "$OUT/concordance.csv"; then
    $PY "$R/interpolation_probability.py" --network "$NET" --classifier "$CLF" --seeds "$SEEDS" --steps 24 --outdir "$OUT"
    PLOT=", interpolation_probability.png"
else
    echo "no strong or weak seed in $OUT/concordance.csv: no interpolation_probability.png (a GAN trained this briefly" \
        "does not draw its classes yet)"
fi
echo "demo output in $OUT: contact_sheet.png, class_blend.png, images/, blend/ (mp4 + strips), concordance.csv$PLOT"
