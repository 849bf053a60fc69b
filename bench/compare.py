"""Time fusedrnn against its peers in one run and print the ratios.

    python bench/compare.py                      # the default grid, every installed peer
    python bench/compare.py --shapes 100x16x256 --cells lstm --repeat 7

Shapes are TxBxH (I = H). Each cell of the table is the minimum over --repeat runs, with the
libraries interleaved run by run so that a noisy machine hurts them alike. Ratios are
peer time / fusedrnn time: above 1 means fusedrnn is faster.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fusedrnn  # noqa: E402
from peers import PEERS, make_problem  # noqa: E402

DEFAULT_SHAPES = ["100x1x256", "100x16x256", "100x64x512", "50x32x1024", "1000x1x128"]


def parse_shape(text):
    T, B, H = (int(v) for v in text.lower().split("x"))
    return T, B, H


def time_interleaved(runners, repeat, settle):
    """{name: best seconds} over `repeat` rounds, one call of each runner per round. Each call
    starts `settle` seconds after the previous one ended: thread pools (OpenMP's, ONNX
    Runtime's, OpenBLAS's) spin for a while after their work, and would otherwise steal the
    cores from whichever library runs next."""
    for f in runners.values():  # warm-up: first-call allocations, thread start-up
        f()
    best = {name: float("inf") for name in runners}
    for _ in range(repeat):
        for name, f in runners.items():
            time.sleep(settle)
            t0 = time.perf_counter()
            f()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def build_runners(cell, shape, mode, peers):
    T, B, H = shape
    problem = make_problem(cell, T, B, H)
    runners, missing = {}, []
    for name in peers:
        try:
            modes = PEERS[name](cell, problem)
        except ImportError:
            missing.append(name)
            continue
        if mode in modes:
            runners[name] = modes[mode]
    return runners, missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru"])
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES)
    parser.add_argument("--modes", nargs="+", default=["inference", "training"],
                        choices=["inference", "training"])
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--settle", type=float, default=0.3,
                        help="idle seconds before each timed call (lets spinning pools sleep)")
    args = parser.parse_args(argv)

    fusedrnn.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    others = [p for p in args.peers if p != "fusedrnn"]
    print(f"fusedrnn {fusedrnn.__version__}, {args.threads} threads, float32, I = H, "
          f"min of {args.repeat} interleaved runs; ratio = peer ms / fusedrnn ms")
    print(f"{'cell':<5} {'mode':<10} {'T x B x H':<12} {'fusedrnn ms':>11} "
          + " ".join(f"{p + ' ms':>14} {'ratio':>6}" for p in others))
    skipped = set()
    for cell in args.cells:
        for mode in args.modes:
            for text in args.shapes:
                runners, missing = build_runners(cell, parse_shape(text), mode,
                                                 ["fusedrnn"] + others)
                skipped.update(missing)
                best = time_interleaved(runners, args.repeat, args.settle)
                ours = best["fusedrnn"] * 1e3
                cols = []
                for p in others:
                    if p in best:
                        cols.append(f"{best[p] * 1e3:>14.2f} {best[p] * 1e3 / ours:>6.2f}")
                    else:
                        cols.append(f"{'-':>14} {'-':>6}")
                print(f"{cell:<5} {mode:<10} {text:<12} {ours:>11.2f} " + " ".join(cols),
                      flush=True)
    if skipped:
        print("not installed:", ", ".join(sorted(skipped)))


if __name__ == "__main__":
    main()
