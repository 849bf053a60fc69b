"""The CUDA backend's two time-loop paths against each other on one GPU: the per-step path
(cuBLAS GEMM + fused pointwise kernel a step, FUSEDRNN_CUDA_PERSISTENT=0) and the persistent
kernels (one cooperative launch a loop, =1), phase by phase: forward inference, forward with
training=True, backward alone (on the saved block of one training forward), and a training
call whose forward takes the default path and only its backward the one timed ("default
fwd+bwd"). Sets the defaults in csrc/cuda/persistent.cuh (persistent_by_default).

    python bench/cuda_paths.py [--shapes 100x1x256 ...] [--repeat 7]

Each cell is the minimum over --repeat rounds of one CUDA-event-timed call; the two paths
alternate call by call in one process (the variable is read at each call). Ratio = per-step
ms / persistent ms (above 1: the persistent kernel is faster).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fusedrnn  # noqa: E402
from cuda_peers import _torch, time_interleaved, to_torch  # noqa: E402
from peers import make_problem  # noqa: E402

SHAPES = ["100x1x256", "1000x1x128", "100x8x512", "100x16x256", "100x32x256", "50x32x1024"]


def with_path(value, f):
    def run():
        os.environ["FUSEDRNN_CUDA_PERSISTENT"] = value
        return f()
    return run


def backward_after_default_forward(value, forward, backward, p, torch):
    """A training call whose forward takes the default path and whose backward takes `value`'s:
    the backward's two paths as a training step meets them (the host enqueues the backward
    while the forward runs)."""
    def run():
        os.environ.pop("FUSEDRNN_CUDA_PERSISTENT", None)
        out = forward(**p, training=True)
        os.environ["FUSEDRNN_CUDA_PERSISTENT"] = value
        return backward(out[-1], torch.ones_like(out[0]))
    return run


def phases(torch, cell, p):
    """{phase: {path: callable}} for one problem (torch CUDA tensors)."""
    forward = fusedrnn.lstm_forward if cell == "lstm" else fusedrnn.gru_forward
    backward = fusedrnn.lstm_backward if cell == "lstm" else fusedrnn.gru_backward
    os.environ["FUSEDRNN_CUDA_PERSISTENT"] = "0"
    out = forward(**p, training=True)
    saved, dy = out[-1], torch.ones_like(out[0])
    calls = {"inference": lambda: forward(**p),
             "training fwd": lambda: forward(**p, training=True),
             "backward": lambda: backward(saved, dy)}
    table = {phase: {v: with_path(v, f) for v in ("0", "1")} for phase, f in calls.items()}
    table["default fwd+bwd"] = {v: backward_after_default_forward(v, forward, backward, p, torch)
                                for v in ("0", "1")}
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=SHAPES)
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch = _torch()
    print(f"fusedrnn {fusedrnn.__version__} CUDA on {torch.cuda.get_device_name()}, float32, "
          f"I = H, min of {args.repeat} alternating calls; ratio = per-step / persistent")
    print(f"{'cell':<5} {'T x B x H':<11} {'phase':<15} {'per-step ms':>11} "
          f"{'persistent ms':>13} {'ratio':>6}")
    for cell in args.cells:
        for text in args.shapes:
            T, B, H = map(int, text.split("x"))
            p = to_torch(torch, make_problem(cell, T, B, H, dtype=np.float32), torch.float32)
            for phase, paths in phases(torch, cell, p).items():
                best = time_interleaved(torch, paths, args.repeat)
                a, b = best["0"] * 1e3, best["1"] * 1e3
                print(f"{cell:<5} {text:<11} {phase:<15} {a:>11.3f} {b:>13.3f} {a / b:>6.2f}",
                      flush=True)
    os.environ.pop("FUSEDRNN_CUDA_PERSISTENT", None)


if __name__ == "__main__":
    main()
