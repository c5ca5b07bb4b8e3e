#!/usr/bin/env bash
# Every benchmark on CUDA in one command, in under 10 minutes (each step has its own time limit):
#   generator fp32 / auto (fp16 top blocks) / bf16 vs the reference algorithm, batch 1 and 8, 512 px;
#   GAN training s/kimg at 512 px batch 8 (fp16), against NVIDIA's published 41 s/kimg on one A100;
#   concordance seeds/s; workbench latency (bench/workbench.py, when present).
# Usage: bash bench/gpu.sh [outdir]   (run from anywhere; figures go to stdout and outdir/*.txt)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
out="${1:-bench-gpu-$(date -u +%Y%m%dT%H%M%SZ)}"

if ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "Error: bench/gpu.sh needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False)" >&2
  exit 1
fi
mkdir -p "$out"
python -c 'import torch; p = torch.cuda.get_device_properties(0)
print(f"GPU {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")' \
  | tee "$out/device.txt"

failed=()
step() {  # step NAME SECONDS COMMAND...: run with a time limit, keep going on failure
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit} s): $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out/$name.txt"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || failed+=("$name")
}

step generator 210 python bench/generator.py --device cuda --batches 1,8 --rounds 2 --repeats 5 \
  --configs reference,fp32,auto,bf16
echo "NVIDIA published: 41 s/kimg at 512 px on one A100 (StyleGAN2-ADA, paper config)"
step train_gan 150 python bench/train_gan.py --device cuda --res 512 --batch 8 --cbase 32768 --cmax 512 --map 8 \
  --kimg 0.16 --fp16 --workers 4
step concordance 120 python bench/concordance.py --device cuda --seeds 16 --batch 8
if [ -f bench/workbench.py ]; then
  step workbench 90 python bench/workbench.py --device cuda
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "Error: failed or timed out: ${failed[*]} (logs in $out/)" >&2
  exit 1
fi
echo "all benchmarks done; logs in $out/"
