"""Time fusedrnn against its peers in one run and print the ratios.

    python bench/compare.py                      # the default grid, every installed peer
    python bench/compare.py --shapes 100x16x256 --cells lstm --repeat 7 --plot speed.png
    python bench/compare.py --device cuda          # the CUDA backend against cuDNN (cuda_peers.py)

Shapes are TxBxH (I = H). Mode "packed" is fusedrnn's inference on weights packed once
(fusedrnn.pack_weights) against the peers' inference. Each cell of the table is the minimum
over --repeat runs, with the libraries interleaved run by run so that a noisy machine hurts
them alike. Ratios are peer time / fusedrnn time: above 1 means fusedrnn is faster. "% sgemm"
is fusedrnn's FLOP rate (2*T*B*G*H*(I+H) forward, three times that for training) over the
rate of a 2048^3 float32 matmul through NumPy's OpenBLAS, measured in the same run; "% peak"
is a library's rate over the FMA peak (every thread running a register-only multiply-add loop
at fusedrnn's SIMD level), the ceiling no GEMM passes. The header also gives a one-thread
copy bandwidth (a 256 MB NumPy copy), the ceiling of a step that streams its weights from
memory.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import fusedrnn  # noqa: E402
from peers import PEERS, flops, make_problem  # noqa: E402

DEFAULT_SHAPES = ["100x1x256", "100x16x256", "100x64x512", "50x32x1024", "1000x1x128"]


def parse_shape(text):
    T, B, H = (int(v) for v in text.lower().split("x"))
    return T, B, H


def time_interleaved(runners, repeat, settle, burst=1):
    """{name: best seconds} over `repeat` rounds. In each round every runner makes `burst`
    back-to-back calls, each timed, starting `settle` seconds after the previous runner's last
    call ended: thread pools (OpenMP's, ONNX Runtime's, OpenBLAS's) spin for a while after
    their work, and would otherwise steal the cores from whichever library runs next. burst=1
    times each library cold (idle cores, asleep threads); a burst of several times it warm, as a
    loop that calls it again and again would run."""
    for f in runners.values():  # warm-up: first-call allocations, thread start-up
        f()
    best = {name: float("inf") for name in runners}
    for _ in range(repeat):
        for name, f in runners.items():
            time.sleep(settle)
            for _ in range(burst):
                t0 = time.perf_counter()
                f()
                best[name] = min(best[name], time.perf_counter() - t0)
    return best


def sgemm_rate(repeat, n=2048):
    """FLOP/s of the best of `repeat` n^3 float32 matmuls (NumPy's OpenBLAS, its own threads)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def fma_peak(threads):
    """FLOP/s of the register-only FMA loop on `threads` threads (fusedrnn's probe)."""
    from fusedrnn import _core

    return _core._fma_peak(0.3, threads)


def copy_bandwidth(repeat, nbytes=256 << 20):
    """Bytes/s read plus written by the best of `repeat` one-thread NumPy copies of nbytes."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def plot(results, peers, path):
    """Bar chart of peer time / fusedrnn time by shape, one panel per cell and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(cell, mode) for cell, mode, _ in results})
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, (cell, mode) in zip(axes[0], keys):
        rows = [(shape, best) for c, m, shape in results if (c, m) == (cell, mode)
                for best in [results[(c, m, shape)]]]
        names = [p for p in peers if any(p in best for _, best in rows)]
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            ratios = [best[name] / best["fusedrnn"] if name in best else 0 for _, best in rows]
            ax.bar(np.arange(len(rows)) + i * width, ratios, width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(rows)) + width * (len(names) - 1) / 2)
        ax.set_xticklabels([s for s, _ in rows], rotation=30, fontsize=8)
        ax.set_title(f"{cell} {mode}")
        ax.set_ylabel("peer time / fusedrnn time")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print("saved", path)


def build_runners(cell, shape, mode, peers):
    """mode "packed": fusedrnn's inference on weights packed once (fusedrnn.pack_weights),
    against the peers' inference (ONNX Runtime's session packs its weights once too)."""
    T, B, H = shape
    problem = make_problem(cell, T, B, H)
    runners, missing = {}, []
    for name in peers:
        try:
            modes = PEERS[name](cell, problem)
        except ImportError:
            missing.append(name)
            continue
        key = "inference" if mode == "packed" and name != "fusedrnn" else \
            "inference packed" if mode == "packed" else mode
        if key in modes:
            runners[name] = modes[key]
    return runners, missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru"])
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES)
    parser.add_argument("--modes", nargs="+", default=["inference", "packed", "training"],
                        choices=["inference", "packed", "training"],
                        help="packed: inference on weights packed once (fusedrnn.pack_weights)")
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--settle", type=float, default=0.3,
                        help="idle seconds before each library's turn (lets spinning pools sleep)")
    parser.add_argument("--burst", type=int, default=1,
                        help="back-to-back timed calls in each library's turn (1: cold calls)")
    parser.add_argument("--plot", metavar="PNG", help="write a bar chart of the ratios here")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: fusedrnn's CUDA backend against PyTorch's cuDNN on one GPU")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32",
                        help="storage dtype of the --device cuda runs")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        import cuda_peers

        results = cuda_peers.main(args, parse_shape)
        if args.plot:
            plot(results, ["cudnn"], args.plot)
        return

    fusedrnn.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    others = [p for p in args.peers if p != "fusedrnn"]
    sgemm = sgemm_rate(args.repeat)
    peak = fma_peak(args.threads)
    print(f"fusedrnn {fusedrnn.__version__}, {args.threads} threads, float32, I = H, "
          f"min of {args.repeat} interleaved runs; ratio = peer ms / fusedrnn ms")
    print(f"sgemm 2048^3: {sgemm / 1e9:.0f} GFLOP/s = {100 * sgemm / peak:.0f}% of the FMA peak "
          f"{peak / 1e9:.0f} GFLOP/s ({fusedrnn.info()['cpu_simd']}); one-thread copy "
          f"{copy_bandwidth(args.repeat) / 1e9:.1f} GB/s read+written")
    print(f"fusedrnn's BLAS: {fusedrnn.info()['blas']}")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} holds the BLAS (NumPy's "
              "and fusedrnn's) to those kernels, whatever this CPU runs")
    print(f"{'cell':<5} {'mode':<10} {'T x B x H':<12} {'fusedrnn ms':>11} {'% sgemm':>7} "
          f"{'% peak':>6} " + " ".join(f"{p + ' ms':>14} {'ratio':>6} {'% peak':>6}"
                                       for p in others))
    skipped, results = set(), {}
    for cell in args.cells:
        for mode in args.modes:
            for text in args.shapes:
                shape = parse_shape(text)
                runners, missing = build_runners(cell, shape, mode, ["fusedrnn"] + others)
                skipped.update(missing)
                best = time_interleaved(runners, args.repeat, args.settle, args.burst)
                results[(cell, mode, text)] = best
                ours = best["fusedrnn"] * 1e3
                work = flops(cell, shape, mode)
                cols = []
                for p in others:
                    if p in best:
                        cols.append(f"{best[p] * 1e3:>14.2f} {best[p] * 1e3 / ours:>6.2f} "
                                    f"{100 * work / best[p] / peak:>5.0f}%")
                    else:
                        cols.append(f"{'-':>14} {'-':>6} {'-':>6}")
                print(f"{cell:<5} {mode:<10} {text:<12} {ours:>11.2f} "
                      f"{100 * work / best['fusedrnn'] / sgemm:>6.0f}% "
                      f"{100 * work / best['fusedrnn'] / peak:>5.0f}% " + " ".join(cols),
                      flush=True)
    if skipped:
        print("not installed:", ", ".join(sorted(skipped)))
    if args.plot:
        plot(results, others, args.plot)


if __name__ == "__main__":
    main()
