#!/usr/bin/env bash
# Times our training epochs and PyTorch's on the same machine and prints the ratio (ours /
# PyTorch; below 1 is faster). The two alternate, round after round, so that a slow stretch of
# the machine hits both: each round runs `mnist-bn bench --epochs 2` and then the reference's
# training (scripts/lesson-pytorch.py, 2 epochs per model); the second epoch of each (past the
# first epoch's warm-up) is the round's figure, and the medians over the rounds are compared.
# Also prints our evaluation and load times and peak RSS. Run it on a quiet machine: a build
# beside it makes the numbers meaningless.
#
# Usage: scripts/compare-pytorch.sh [ROUNDS=5] [THREADS=2] [CARGO FEATURES...]
#   e.g. scripts/compare-pytorch.sh 5 2                   # the default CPU backend
#        BACKEND=ndarray scripts/compare-pytorch.sh 5 2 --features ndarray
# Environment: TORCH_PYTHON (a Python with torch, numpy, safetensors; default
# /tmp/torchenv/bin/python), REFERENCE (default ../shared/reference), BACKEND (flex, ndarray),
# BIN (a mnist-bn binary built before, e.g. with other features in another target dir; then
# nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
threads="${2:-2}"
shift $(( $# > 2 ? 2 : $# ))
python="${TORCH_PYTHON:-/tmp/torchenv/bin/python}"
reference="$(realpath "${REFERENCE:-../shared/reference}")"
out="$(mktemp -d)"

bin="${BIN:-./target/release/mnist-bn}"
[ -n "${BIN:-}" ] || cargo build --release --quiet "$@"
export RAYON_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"
for round in $(seq "$rounds"); do
    "$bin" ${BACKEND:+--backend "$BACKEND"} bench --epochs 2 \
        --json "$out/ours-$round.json" > /dev/null
    "$python" scripts/lesson-pytorch.py "$reference" data/mnist "$threads" 2 > "$out/torch-$round.log"
done

python3 - "$out" "$rounds" "$threads" <<'PY'
import json, re, statistics, sys
out, rounds, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ours = {"batchnorm": [], "plain": []}
theirs = {"batchnorm": [], "plain": []}
extra = []
for r in range(1, rounds + 1):
    report = json.load(open(f"{out}/ours-{r}.json"))
    for m in report["models"]:
        ours[m["name"]].append(m["epoch_seconds"][-1])
    extra.append((report["load_seconds"], [m["eval_seconds"] for m in report["models"]], report["peak_rss_mb"]))
    # The reference prints "Epoch: N \tTraining Loss: x   [1.234s, ...]" per epoch, BN model first.
    times = [float(t) for t in re.findall(r"Epoch: 2 .*?\[([0-9.]+)s", open(f"{out}/torch-{r}.log").read())]
    theirs["batchnorm"].append(times[0])
    theirs["plain"].append(times[1])
print(f"backend: {report['backend']}, threads: {threads}, {rounds} rounds, second epoch of each")
print(f"{'model':<10} {'ours s/epoch':>13} {'torch s/epoch':>14} {'ratio':>7}   (ours, torch per round)")
for name in ("batchnorm", "plain"):
    o, t = statistics.median(ours[name]), statistics.median(theirs[name])
    rows = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(ours[name], theirs[name]))
    print(f"{name:<10} {o:>13.3f} {t:>14.3f} {o / t:>7.2f}   ({rows})")
loads = [e[0] for e in extra]
evals = [x for e in extra for x in e[1]]
print(f"ours: load {min(loads):.3f}-{max(loads):.3f} s, eval of 10,000 images {min(evals):.3f}-{max(evals):.3f} s, "
      f"peak RSS {max(e[2] for e in extra):.0f} MB")
PY
echo "raw figures: $out"
