#!/usr/bin/env python3
"""The lesson's whole run in PyTorch, and nothing else: load MNIST, train the BN model and the
plain model for 10 epochs each, test the BN model in train mode then eval mode and the plain
model in eval mode. It reuses the functions of the reference (`seed_pytorch.py`), so the work is
the reference's, without its fixtures, golden steps and DataLoader timing. For
`scripts/compare-whole-run.sh`, which times it beside `mnist-bn run`.

Usage: lesson-pytorch.py REFERENCE_DIR DATA_DIR THREADS [EPOCHS=10] [DEVICE=cpu]
(DEVICE: a torch device such as cuda; the data and both models are moved there first.)
"""
import sys
import time

started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
import seed_pytorch as ref  # noqa: E402

data_dir, threads = sys.argv[2], int(sys.argv[3])
epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 10
device = torch.device(sys.argv[5] if len(sys.argv) > 5 else "cpu")
torch.set_num_threads(threads)
x_train, y_train, x_test, y_test = (t.to(device) for t in ref.load_mnist(data_dir))
torch.manual_seed(0)
bn = ref.NeuralNet(use_batch_norm=True).to(device)
plain = ref.NeuralNet(use_batch_norm=False).to(device)
ref.train(bn, "batch-norm", x_train, y_train, epochs, 64)
ref.train(plain, "no-norm", x_train, y_train, epochs, 64)
ref.test(bn, True, x_test, y_test, 64, "BN, train mode")
ref.test(bn, False, x_test, y_test, 64, "BN, eval mode")
ref.test(plain, False, x_test, y_test, 64, "plain, eval mode")
print(f"whole run after imports: {time.perf_counter() - started:.2f} s")
