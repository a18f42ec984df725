#!/usr/bin/env python3
"""One of the lab's small networks trained alone in PyTorch, timed per step: the twin of
`examples/small_net_step.rs`, with the same flags and output lines. A 784-100-100-100-10 ReLU
MLP (with `--norm batch`, BatchNorm1d after each hidden Linear, which then has no bias), batch
60, plain SGD at lr 0.01, cross-entropy, MNIST in file order wrapping around (each pass ends with
the rest of the images, as the learner's `fit_steps` does), on one thread. MNIST is read from the
IDX files and scaled to [0, 1] as `scripts/lesson-pytorch.py` does (the reference's
`load_mnist`: uint8 -> float -> /255, no mean/std normalization), without the reference.

Usage: small-net-pytorch.py [--norm batch|none] [--steps 2000] [--data-dir data/mnist]

Prints the steps, the seconds of the training loop alone (imports, loading MNIST and building
the network left out), ms/step, and the last step's loss with the mean of the last 100.
"""
import argparse
import gzip
import os
import struct
import time
from collections import deque

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(data_dir, name):
    """An unsigned-byte IDX file, plain or gzipped, as a numpy array of its dimensions."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as f:
                buf = f.read()
            break
    else:
        raise FileNotFoundError(f"{name}(.gz) not found in {data_dir}")
    zero, dtype_code, ndim = struct.unpack(">HBB", buf[:4])
    assert zero == 0 and dtype_code == 0x08, f"{name}: not an unsigned-byte IDX file"
    dims = struct.unpack(">" + "I" * ndim, buf[4:4 + 4 * ndim])
    arr = np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim)
    assert arr.size == int(np.prod(dims)), f"{name}: size mismatch"
    return arr.reshape(dims)


def load_train(data_dir):
    """The training set: x float32 [N, 784] in [0, 1], y int64 [N]."""
    x = torch.from_numpy(read_idx(data_dir, "train-images.idx3-ubyte").copy())
    y = torch.from_numpy(read_idx(data_dir, "train-labels.idx1-ubyte").astype(np.int64))
    return x.reshape(x.shape[0], -1).float().div(255), y


def small_net(batch_norm):
    """784-100-100-100-10: Linear (no bias before batch norm) [-> BatchNorm1d] -> ReLU per
    hidden layer, then Linear; PyTorch's default initialization."""
    layers, fan_in = [], 784
    for width in (100, 100, 100):
        layers.append(nn.Linear(fan_in, width, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    return nn.Sequential(*layers)


def batches(x, y, batch_size):
    """Batches in file order, over and over; each pass ends with the rest of the images."""
    n = x.shape[0]
    while True:
        for i in range(0, n, batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--norm", choices=("batch", "none"), default="batch")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--data-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist"))
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps {args.steps}: expected a number of steps, at least 1")

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = load_train(args.data_dir)
    model = small_net(args.norm == "batch")
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    last = deque(maxlen=100)
    feed = batches(x, y, 60)

    started = time.perf_counter()
    for _ in range(args.steps):
        images, targets = next(feed)
        optim.zero_grad()
        loss = F.cross_entropy(model(images), targets)
        loss.backward()
        optim.step()
        # Read every loss, as the learner does (it checks each for divergence).
        last.append(loss.item())
    seconds = time.perf_counter() - started

    print(f"network: 784-100-100-100-10 relu, norm {args.norm}, batch 60, SGD lr 0.01 "
          f"(torch {torch.__version__}, {torch.get_num_threads()} thread)")
    print(f"steps: {args.steps}")
    print(f"loop seconds: {seconds:.3f}")
    print(f"ms/step: {1e3 * seconds / args.steps:.4f}")
    final, mean = last[-1], sum(last) / len(last)
    print(f"final loss: {final:.6f} (mean of the last {len(last)}: {mean:.6f})")


if __name__ == "__main__":
    main()
