#!/usr/bin/env bash
# Times our training epochs and PyTorch's on the same machine, one right after the other, and
# prints the ratio (ours / PyTorch; below 1 is faster). Run it on a quiet machine: a build or
# another benchmark beside it makes the numbers meaningless.
#
# Usage: scripts/compare-pytorch.sh [EPOCHS=3] [THREADS=2] [CARGO FEATURES...]
#   e.g. scripts/compare-pytorch.sh 3 2                  # the default CPU backend
#        scripts/compare-pytorch.sh 3 1 --features ndarray
# Environment: TORCH_PYTHON (a Python with torch, numpy, safetensors; default
# /tmp/torchenv/bin/python), REFERENCE (default ../shared/reference), BACKEND (flex, ndarray).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-3}"
threads="${2:-2}"
shift $(( $# > 2 ? 2 : $# ))
python="${TORCH_PYTHON:-/tmp/torchenv/bin/python}"
reference="${REFERENCE:-../shared/reference}"
out="$(mktemp -d)"

cargo build --release --quiet "$@"
export RAYON_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"
./target/release/mnist-bn ${BACKEND:+--backend "$BACKEND"} bench --epochs "$epochs" \
    --json "$out/ours.json"
"$python" "$reference/seed_pytorch.py" --data-dir data/mnist --threads "$threads" \
    --epochs "$epochs" --out-dir "$out/torch" > "$out/torch.log"

python3 - "$out/ours.json" "$out/torch/reference_results.json" <<'PY'
import json, statistics, sys
ours = json.load(open(sys.argv[1]))
torch = json.load(open(sys.argv[2]))
theirs = {"batchnorm": torch["train"]["bn"], "plain": torch["train"]["nonorm"]}
print(f"backend: {ours['backend']}, threads: {ours['rayon_threads']}; torch {torch['torch_version']}, threads {torch['threads']}")
print(f"{'model':<10} {'ours s/epoch':>13} {'torch s/epoch':>14} {'ratio':>7}")
for m in ours["models"]:
    t = statistics.median(theirs[m["name"]]["epoch_seconds"]["per_epoch"])
    o = m["median_epoch_seconds"]
    print(f"{m['name']:<10} {o:>13.3f} {t:>14.3f} {o / t:>7.2f}")
print(f"ours: load {ours['load_seconds']:.3f} s, eval " +
      ", ".join(f"{m['name']} {m['eval_seconds']:.3f} s" for m in ours["models"]) +
      f", peak RSS {ours['peak_rss_mb']:.0f} MB; torch load {torch['data_load_seconds']:.3f} s")
PY
echo "raw figures: $out"
