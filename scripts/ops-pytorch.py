#!/usr/bin/env python3
"""PyTorch's side of `cargo bench --bench ops`: the matrix products of one batch-64 step of the
lesson's MLP, in PyTorch's own layouts (weights [out, in], as nn.Linear and autograd use them),
timed one by one: median µs per call, GFLOP/s and seconds per epoch (938 calls).

Usage: python scripts/ops-pytorch.py [THREADS=2]   (a Python with torch, e.g. /tmp/torchenv)
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
steps = 938


def bench(f, warmup=20, reps=300):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def r(*shape):
    return torch.rand(*shape) * 2 - 1


x, W1, dy1 = r(64, 784), r(512, 784), r(64, 512)
h1, W2, dy2 = r(64, 512), r(256, 512), r(64, 256)
h2, W3, dy3 = r(64, 256), r(10, 256), r(64, 10)
products = [
    ("fc1 forward  x·W1ᵀ", lambda: x @ W1.t(), 64 * 784 * 512),
    ("fc1 weight grad  dyᵀ·x", lambda: dy1.t() @ x, 64 * 784 * 512),
    ("fc2 forward  h·W2ᵀ", lambda: h1 @ W2.t(), 64 * 512 * 256),
    ("fc2 weight grad  dyᵀ·h", lambda: dy2.t() @ h1, 64 * 512 * 256),
    ("fc2 input grad  dy·W2", lambda: dy2 @ W2, 64 * 512 * 256),
    ("fc3 forward  h·W3ᵀ", lambda: h2 @ W3.t(), 64 * 256 * 10),
    ("fc3 weight grad  dyᵀ·h", lambda: dy3.t() @ h2, 64 * 256 * 10),
    ("fc3 input grad  dy·W3", lambda: dy3 @ W3, 64 * 256 * 10),
]
print(f"ops of one batch-64 step (torch {torch.__version__}, threads {torch.get_num_threads()})")
print(f"{'matrix product':<34} {'µs/call':>10} {'GFLOP/s':>9} {'s/epoch':>11}")
total = 0.0
for name, f, mnk in products:
    s = bench(f)
    total += s * steps
    print(f"{name:<34} {s * 1e6:>10.1f} {2 * mnk / s / 1e9:>9.1f} {s * steps:>11.3f}")
print(f"{'all products of a step':<34} {'':>10} {'':>9} {total:>11.3f}")

for c in (512, 256):
    xb = r(64, c).requires_grad_()
    g = torch.ones(c, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    d = r(64, c)
    rm, rv = torch.zeros(c), torch.ones(c)

    def step():
        out = F.batch_norm(xb, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)
        out.backward(d)

    s = bench(step)
    print(f"{f'batch norm [64, {c}] fwd+bwd':<34} {s * 1e6:>10.1f} {'':>9} {s * steps:>11.3f}")
