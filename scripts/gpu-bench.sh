#!/usr/bin/env bash
# The GPU benchmark, one command for a machine with a GPU (about 5-10 minutes with the builds):
# builds the wgpu binary and, where it builds, the cuda one; prints the CPU, the GPUs and the
# device each backend ran on (for wgpu, every adapter it sees); runs `mnist-bn bench` on flex (the CPU), wgpu and cuda; runs the PyTorch reference's
# training on CUDA when a Python with torch and CUDA is there; prints one table of seconds per
# training epoch (the last of EPOCHS) and the ratio to the CPU.
#
# Usage: scripts/gpu-bench.sh [EPOCHS=2]
# Environment: TORCH_PYTHON (default python3), REFERENCE (default ../shared/reference),
# CARGO_TARGET_DIR. The cuda build needs Burn's LLVM bundle (tracel-llvm), which its build
# script downloads from GitHub: without a network it fails, and the table says so.
set -uo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-2}"
target="${CARGO_TARGET_DIR:-target}"
python="${TORCH_PYTHON:-python3}"
reference="$(realpath "${REFERENCE:-../shared/reference}" 2>/dev/null || echo ../shared/reference)"
out="$(mktemp -d)"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p')"
command -v nvidia-smi >/dev/null && nvidia-smi -L

bins=()
if cargo build --release --quiet --features wgpu --target-dir "$target/gpu-bench-wgpu"; then
    bins+=("wgpu=$target/gpu-bench-wgpu/release/mnist-bn")
else
    echo "wgpu: the build failed" | tee "$out/wgpu.failed"
fi
if cargo build --release --quiet --features cuda --target-dir "$target/gpu-bench-cuda" 2>"$out/cuda-build.log"; then
    bins+=("cuda=$target/gpu-bench-cuda/release/mnist-bn")
else
    echo "cuda: the build failed (last lines below)" | tee "$out/cuda.failed"
    tail -5 "$out/cuda-build.log"
fi

for entry in "${bins[@]}"; do
    backend="${entry%%=*}" bin="${entry#*=}"
    for b in $([ "$backend" = wgpu ] && echo "flex wgpu" || echo cuda); do
        if "$bin" --backend "$b" bench --epochs "$epochs" --json "$out/$b.json" >"$out/$b.log" 2>&1; then
            # The device it ran on (for wgpu, with every adapter wgpu sees).
            sed -n "s/^backend: /$b: /p" "$out/$b.log"
        else
            echo "$b: bench failed:"; tail -3 "$out/$b.log"
        fi
    done
done

if "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    "$python" scripts/lesson-pytorch.py "$reference" data/mnist 1 "$epochs" cuda >"$out/torch-cuda.log" 2>&1 \
        || { echo "PyTorch on CUDA failed:"; tail -3 "$out/torch-cuda.log"; }
else
    echo "PyTorch with CUDA: not found (TORCH_PYTHON=$python)"
fi

python3 - "$out" "$epochs" <<'PY'
import json, os, re, sys
out, epochs = sys.argv[1], sys.argv[2]
rows = []
for name in ("flex", "wgpu", "cuda"):
    path = f"{out}/{name}.json"
    if os.path.exists(path):
        r = json.load(open(path))
        rows.append((r["backend"], {m["name"]: m["epoch_seconds"][-1] for m in r["models"]}))
torch_log = f"{out}/torch-cuda.log"
if os.path.exists(torch_log):
    times = [float(t) for t in re.findall(rf"Epoch: {epochs} .*?\[([0-9.]+)s", open(torch_log).read())]
    if len(times) == 2:
        rows.append(("PyTorch on CUDA (the reference)", {"batchnorm": times[0], "plain": times[1]}))
cpu = rows[0][1] if rows and rows[0][0].startswith("flex") else None
print(f"\n| backend | BN s/epoch | plain s/epoch | BN ÷ flex | plain ÷ flex |")
print("|---|---|---|---|---|")
for name, t in rows:
    ratio = lambda m: f"{t[m] / cpu[m]:.2f}" if cpu else "–"
    print(f"| {name} | {t['batchnorm']:.2f} | {t['plain']:.2f} | {ratio('batchnorm')} | {ratio('plain')} |")
print(f"(epoch {epochs} of each; mnist-bn bench, full MNIST, batch 64)")
PY
