"""The fastest a layer could run on this machine, from its measured ceilings, against fusedrnn
and its peers timed in the same run: how much room each shape has left, and whether the CPU
speed issue's targets are within reach.

    python bench/ceiling.py                          # the default grid, warm, every peer installed
    python bench/ceiling.py --cells lstm --modes inference --shapes 100x1x256 1000x1x128

Two floors a shape, both from fusedrnn's probes run on every thread at its SIMD level: the FMA
peak (a register-only multiply-add loop) and the rate of streaming weights of a given size,
split among the threads, as the batch-1 recurrent product streams them (fusedrnn._core.
_stream_read_rate; up to one L1 of each thread's share is counted at the L1's rate, as if it
stayed there). Nothing else is counted: no gate math, no barrier, no writes, no packing.

- serial: the input projection at the FMA peak, then T steps, each the longer of its FLOPs at
  the peak and its read of w_hh; training adds the backward's T steps (the same read) and its
  three whole-sequence products (dx, dW_ih, dW_hh) at the peak.
- overlapped: the longer of all the FLOPs at the peak and all the steps' reads, as if a kernel
  hid the whole-sequence products entirely under the steps' reads.

Printed a shape: fusedrnn's time and the peer's (the faster of PyTorch and ONNX Runtime for
inference, PyTorch for training), both floors, fusedrnn's share of each floor (floor / time),
and the most any code could gain on the peer (peer / floor); then geometric means by cell and
mode next to the issue's targets (1.5x inference, 2.5x training).
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fusedrnn  # noqa: E402
from compare import DEFAULT_SHAPES, build_runners, parse_shape, time_interleaved  # noqa: E402
from fusedrnn import _core  # noqa: E402

TARGETS = {"inference": 1.5, "training": 2.5}
PEERS_BY_MODE = {"inference": ["torch", "onnxruntime"], "training": ["torch"]}


def l1d_bytes(default=32 << 10):
    """One core's L1 data cache, as Linux reports it (the default where it does not)."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(base)):
            path = os.path.join(base, index)
            with open(os.path.join(path, "level")) as f, open(os.path.join(path, "type")) as g:
                if f.read().strip() == "1" and g.read().strip() == "Data":
                    with open(os.path.join(path, "size")) as h:
                        text = h.read().strip()
                    return int(text[:-1]) << 10 if text.endswith("K") else int(text)
    except OSError:
        pass
    return default


class Machine:
    """The FMA peak and the read rates, measured once each (read rates by size)."""

    def __init__(self, threads, seconds=0.3):
        self.threads, self.seconds = threads, seconds
        self.peak = _core._fma_peak(seconds, threads)
        self.l1d = l1d_bytes()
        self._rates = {}

    def read_rate(self, nbytes):
        """Bytes/s of all threads streaming nbytes split among them."""
        if nbytes not in self._rates:
            self._rates[nbytes] = _core._stream_read_rate(nbytes, self.seconds, self.threads)
        return self._rates[nbytes]

    def read_seconds(self, nbytes):
        """One read of nbytes split among the threads, up to an L1 of each share from L1."""
        share = nbytes / self.threads
        resident = min(share, self.l1d)
        rest = share - resident
        t = resident / (self.read_rate(self.threads * self.l1d // 2) / self.threads)
        return t + (rest / (self.read_rate(nbytes) / self.threads) if rest > 0 else 0.0)


def w_hh_bytes(cell, H, itemsize=4):
    """The recurrent weights that every step reads."""
    return (4 if cell == "lstm" else 3) * H * H * itemsize


def floors(cell, shape, mode, machine):
    """(serial, overlapped) seconds for one call at shape (T, B, H), I = H."""
    T, B, H = shape
    I, G = H, 4 if cell == "lstm" else 3
    step_flops = 2 * B * G * H * H
    read = machine.read_seconds(w_hh_bytes(cell, H))
    step = max(step_flops / machine.peak, read)
    projection = 2 * T * B * G * H * I
    passes = 2 if mode == "training" else 1  # the backward's recurrent steps read w_hh again
    # training: dx and dW_ih as the projection, dW_hh as the steps' FLOPs over the sequence
    batched = projection + (2 * projection + T * step_flops if mode == "training" else 0)
    serial = batched / machine.peak + passes * T * step
    flops = batched + passes * T * step_flops
    overlapped = max(flops / machine.peak, passes * T * read)
    return serial, overlapped


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru"])
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES)
    parser.add_argument("--modes", nargs="+", default=["inference", "training"],
                        choices=["inference", "training"])
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--burst", type=int, default=5,
                        help="back-to-back timed calls in each library's turn (1: cold calls)")
    parser.add_argument("--settle", type=float, default=0.3,
                        help="idle seconds before each library's turn (lets spinning pools sleep)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)

    fusedrnn.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    machine = Machine(args.threads)
    print(f"fusedrnn {fusedrnn.__version__}, {args.threads} threads, float32, I = H, min of "
          f"{args.repeat} x {args.burst} interleaved calls; FMA peak {machine.peak / 1e9:.0f} "
          f"GFLOP/s ({fusedrnn.info()['cpu_simd']}); L1d {machine.l1d >> 10} KiB a core")
    print(f"{'cell':<5} {'mode':<10} {'T x B x H':<11} {'read GB/s':>9} {'fusedrnn ms':>11} "
          f"{'peer':<12} {'peer ms':>8} {'ratio':>6} {'serial ms':>9} {'% of it':>7} "
          f"{'peer/serial':>11} {'overlap ms':>10} {'% of it':>7} {'peer/overlap':>12}")
    gains = {}
    for cell in args.cells:
        for mode in args.modes:
            for text in args.shapes:
                shape = parse_shape(text)
                peers = PEERS_BY_MODE[mode]
                runners, _ = build_runners(cell, shape, mode, ["fusedrnn"] + peers)
                best = time_interleaved(runners, args.repeat, args.settle, args.burst)
                serial, overlapped = floors(cell, shape, mode, machine)
                rate = machine.read_rate(w_hh_bytes(cell, shape[2])) / 1e9
                ours = best["fusedrnn"]
                present = [p for p in peers if p in best]
                row = (f"{cell:<5} {mode:<10} {text:<11} {rate:>9.0f} {ours * 1e3:>11.3f} ")
                if not present:
                    print(row + "(no peer installed)", flush=True)
                    continue
                peer = min(present, key=best.get)
                theirs = best[peer]
                gains.setdefault((cell, mode), []).append(
                    (theirs / ours, theirs / serial, theirs / overlapped))
                print(row + f"{peer:<12} {theirs * 1e3:>8.3f} {theirs / ours:>6.2f} "
                      f"{serial * 1e3:>9.3f} {100 * serial / ours:>6.0f}% "
                      f"{theirs / serial:>11.2f} {overlapped * 1e3:>10.3f} "
                      f"{100 * overlapped / ours:>6.0f}% {theirs / overlapped:>12.2f}",
                      flush=True)
    print("geometric means against the faster peer (the issue's target in brackets):")
    for (cell, mode), rows in gains.items():
        ours, serial, overlapped = (geomean([r[i] for r in rows]) for i in range(3))
        print(f"  {cell} {mode} [{TARGETS[mode]}x]: fusedrnn {ours:.2f}x; at the serial floor "
              f"{serial:.2f}x; at the overlapped floor {overlapped:.2f}x "
              f"({len(rows)} shapes)")


if __name__ == "__main__":
    main()
