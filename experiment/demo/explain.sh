#!/bin/sh
# The main job on a GAN and a classifier: images of both classes, class-blend video + strips, concordance CSV,
# interpolation-probability plot. Usage: sh experiment/demo/explain.sh OUTDIR [NETWORK] [CLASSIFIER] (default: demo).
# SEEDS (default 0-63): the concordance search (interpolation_probability.py reuses concordance.py's CSV).
set -eu
OUT=$1; NET=${2:-demo}; CLF=${3:-demo}; SEEDS=${SEEDS:-0-63}; PY=${PY:-python3}
R=$(dirname "$0")/../..   # the repository root
$PY "$R/generate.py" --network "$NET" --class 0 --seeds 0-7 --outdir "$OUT/images/class0"
$PY "$R/generate.py" --network "$NET" --class 1 --seeds 0-7 --outdir "$OUT/images/class1"
$PY "$R/interpolate.py" --network "$NET" --seeds 0-3 --steps 24 --video --merge --outdir "$OUT/blend"
$PY "$R/concordance.py" --network "$NET" --classifier "$CLF" --seeds "$SEEDS" --out "$OUT/concordance.csv"
$PY "$R/interpolation_probability.py" --network "$NET" --classifier "$CLF" --seeds "$SEEDS" --steps 24 --outdir "$OUT"
echo "demo output in $OUT: images/, blend/ (mp4 + strips), concordance.csv, interpolation_probability.png"
