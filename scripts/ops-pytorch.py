#!/usr/bin/env python3
"""PyTorch's side of `cargo bench --bench ops`: the matrix products of one batch-64 step of the
lesson's MLP, in PyTorch's own layouts (weights [out, in], as nn.Linear and autograd use them),
then each hidden linear layer forward + backward, batch norm forward + backward and the SGD update of the largest weight, timed one by one at
one thread and at two: median µs per call, GFLOP/s and seconds per epoch (938 calls).

Usage: python scripts/ops-pytorch.py [THREADS...]   (default: 1 2; a Python with torch, e.g.
/tmp/torchenv)
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

counts = [int(a) for a in sys.argv[1:]] or [1, 2]
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


def on_each(f):
    secs = []
    for n in counts:
        torch.set_num_threads(n)
        secs.append(bench(f))
    return secs


def row(name, secs, mnk=None):
    line = f"{name:<34}"
    line += "".join(f" {s * 1e6:>9.1f}" for s in secs)
    line += "".join(f" {2 * mnk / s / 1e9:>8.1f}" if mnk else f" {'':>8}" for s in secs)
    line += "".join(f" {s * steps:>8.3f}" for s in secs)
    print(line)


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
print(f"ops of one batch-64 step (torch {torch.__version__}; threads {counts})")
header = f"{'operation':<34}"
for what in ("µs", "GF/s", "s/ep"):
    header += "".join(f" {what + '@' + str(n):>{9 if what == 'µs' else 8}}" for n in counts)
print(header)
total = [0.0] * len(counts)
for name, f, mnk in products:
    secs = on_each(f)
    total = [t + s for t, s in zip(total, secs)]
    row(name, secs, mnk)
row("all products of a step", total)

# Each hidden linear layer forward + backward, as autograd runs it (the input gradient for fc2).
for name, d_in, d_out, input_grad in (("fc1", 784, 512, False), ("fc2", 512, 256, True)):
    layer = torch.nn.Linear(d_in, d_out, bias=False)
    xl = r(64, d_in).requires_grad_(input_grad)
    dl = r(64, d_out)

    def layer_step():
        # Fresh gradients every step, as `zero_grad` leaves them in training.
        layer.weight.grad = None
        xl.grad = None
        layer(xl).backward(dl)

    row(f"{name} layer fwd+bwd", on_each(layer_step), (3 if input_grad else 2) * 64 * d_in * d_out)

for c in (512, 256):
    xb = r(64, c).requires_grad_()
    g = torch.ones(c, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    d = r(64, c)
    rm, rv = torch.zeros(c), torch.ones(c)

    def step():
        out = F.batch_norm(xb, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)
        out.backward(d)

    row(f"batch norm [64, {c}] fwd+bwd", on_each(step))

w, gw = r(512, 784), r(512, 784)
row("SGD update w − lr·g [784, 512]", on_each(lambda: w.add_(gw, alpha=-0.01)))
