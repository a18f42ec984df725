#!/usr/bin/env bash
# Times the whole default run (both models, 10 epochs, three test passes; ours also writes
# checkpoints, the report and the charts) against the same work in PyTorch
# (scripts/lesson-pytorch.py, built from the reference's functions), one right after the other,
# each as a whole process from start to exit, and prints the ratio (ours / PyTorch).
#
# Usage: scripts/compare-whole-run.sh [THREADS=2] [EPOCHS=10] [CARGO FEATURES...]
# Environment: TORCH_PYTHON (default /tmp/torchenv/bin/python), REFERENCE (default
# ../shared/reference). Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
epochs="${2:-10}"
shift $(( $# > 2 ? 2 : $# ))
python="${TORCH_PYTHON:-/tmp/torchenv/bin/python}"
reference="$(realpath "${REFERENCE:-../shared/reference}")"
out="$(mktemp -d)"

cargo build --release --quiet "$@"
export RAYON_NUM_THREADS="$threads"
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" > "$out/log" 2>&1; t1=$(date +%s.%N); python3 -c "print($t1 - $t0)"; }
ours=$(seconds ./target/release/mnist-bn run --quiet --epochs "$epochs" --out "$out/run")
cp "$out/log" "$out/ours.log"
theirs=$(seconds "$python" scripts/lesson-pytorch.py "$reference" data/mnist "$threads" "$epochs")
cp "$out/log" "$out/torch.log"
echo "whole run, $epochs epochs per model, $threads threads:"
printf 'ours    %7.2f s  (%s)\n' "$ours" "$(grep -m1 '^backend' "$out/ours.log")"
printf 'PyTorch %7.2f s  (torch %s)\n' "$theirs" "$("$python" -c 'import torch; print(torch.__version__)')"
printf 'ratio   %7.2f\n' "$(python3 -c "print($ours / $theirs)")"
echo "final losses, ours:    $(grep 'Epoch: '"$epochs"' ' "$out/ours.log" | tr -s ' \t' ' ' | cut -d' ' -f5 | paste -sd' ')"
echo "final losses, PyTorch: $(grep 'Epoch: '"$epochs"' ' "$out/torch.log" | tr -s ' \t' ' ' | cut -d' ' -f5 | paste -sd' ')"
echo "logs: $out"
