"""fusedrnn and its peers when another library's thread pool has just run: each timed call
comes right after a 256^3 float32 matrix product through NumPy (its OpenBLAS, on its own
threads) or PyTorch (its OpenMP), whose workers go on spinning for a while after the product
and so take a core from whatever runs next. Prints the median and 90th percentile of `--calls`
calls, back to back and after the product.

    python bench/neighbours.py [--cell lstm] [--shape 100x16x256] [--calls 100]
    OPENBLAS_THREAD_TIMEOUT=4 python bench/neighbours.py   # NumPy's workers sleep at once

The setting that makes a pool sleep at once must be in the environment before the library
loads (OPENBLAS_THREAD_TIMEOUT for NumPy's OpenBLAS, OMP_WAIT_POLICY=PASSIVE for PyTorch).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import fusedrnn  # noqa: E402
from peers import PEERS, make_problem  # noqa: E402


def products(n=256):
    """{neighbour: a call of its n^3 float32 product}, for the libraries installed."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    out = {"numpy": lambda: a @ a}
    try:
        import torch

        t = torch.from_numpy(a)
        out["torch"] = lambda: torch.mm(t, t)
    except ImportError:
        pass
    return out


def percentiles(run, before, calls):
    """(median, p90) ms of `calls` calls of run(), each right after before()."""
    times = []
    for _ in range(calls):
        before()
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return tuple(np.percentile(times, [50, 90]) * 1e3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    parser.add_argument("--shape", default="100x16x256")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    T, B, H = (int(v) for v in args.shape.split("x"))
    neighbours = products()
    if "torch" in neighbours:
        import torch

        torch.set_num_threads(args.threads)
    fusedrnn.set_num_threads(args.threads)
    problem = make_problem(args.cell, T, B, H)
    print(f"fusedrnn {fusedrnn.__version__}, {args.cell} inference {args.shape}, "
          f"{args.threads} threads; median / p90 ms of {args.calls} calls")
    print(f"{'library':<22} {'back to back':>14} " +
          " ".join(f"{'after ' + n:>14}" for n in neighbours))
    libraries = {"fusedrnn": args.threads, "fusedrnn, one thread": 1,
                 "onnxruntime": args.threads, "torch": args.threads}
    for name, threads in libraries.items():
        fusedrnn.set_num_threads(threads)  # ONNX Runtime's session takes its count from here
        try:
            run = PEERS[name.split(",")[0]](args.cell, problem)["inference"]
        except ImportError:
            continue
        run()
        time.sleep(0.3)  # every pool asleep before the back-to-back calls
        cells = [percentiles(run, lambda: None, args.calls)]
        for product in neighbours.values():
            cells.append(percentiles(run, product, args.calls))
        print(f"{name:<22} " + " ".join(f"{m:>7.2f} / {p:<5.1f}" for m, p in cells), flush=True)
    fusedrnn.set_num_threads(args.threads)


if __name__ == "__main__":
    main()
