#!/usr/bin/env python3
"""Loads our exported weights into the lesson's PyTorch model and tests them there.

Usage (PyTorch, numpy and safetensors installed; see ../shared/reference/README.md):
  mnist-bn export --checkpoint runs/X/batchnorm --safetensors /tmp/bn.safetensors
  mnist-bn eval --checkpoint runs/X/batchnorm --json /tmp/bn_eval.json
  python scripts/check-export-in-pytorch.py /tmp/bn.safetensors /tmp/bn_eval.json [batchnorm|plain]

Prints PyTorch's eval-mode test loss and correct count next to ours: they should agree.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("REFERENCE", os.path.join(HERE, "../../shared/reference")))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import seed_pytorch as ref  # noqa: E402  (the lesson's NeuralNet and IDX reader)

weights, ours_json = sys.argv[1], sys.argv[2]
batch_norm = (sys.argv[3] if len(sys.argv) > 3 else "batchnorm") == "batchnorm"
_, _, x_test, y_test = ref.load_mnist(os.path.join(HERE, "../data/mnist"))
model = ref.NeuralNet(use_batch_norm=batch_norm)
print("load_state_dict:", model.load_state_dict(load_file(weights), strict=True))
model.eval()
criterion = nn.CrossEntropyLoss()
loss, correct = 0.0, 0
with torch.no_grad():
    for data, target in ref.batches(x_test, y_test, 64):
        output = model(data)
        loss += criterion(output, target).item() * data.size(0)
        correct += (output.argmax(1) == target).sum().item()
ours = json.load(open(ours_json))[0]
print(f"PyTorch: test loss {loss / len(y_test):.7f}, correct {correct}")
print(f"ours:    test loss {ours['loss']:.7f}, correct {ours['correct']}")
