"""GPU half of bench/compare.py (``--device cuda``): fusedrnn's CUDA backend against PyTorch's
cuDNN nn.LSTM / nn.GRU on the same GPU, from the same weights, in one run.

Both libraries get the same torch CUDA tensors (fusedrnn takes them as they are and returns
torch tensors) and run on torch's current stream. Each timed call is bracketed by CUDA events
and the libraries are interleaved round by round; a cell of the table is the minimum over
--repeat rounds. Ratios are cuDNN time / fusedrnn time (above 1: fusedrnn is faster). "% mm"
is fusedrnn's FLOP rate (the CPU table's count) over that of an n^3 matmul in the same dtype
(float32 without TF32) measured in the same run. Issue targets: >= 1.0x at B >= 64, >= 3x at
B <= 16, inference and training.
"""

import numpy as np

import fusedrnn
from peers import flops, make_problem, torch_runners

DTYPES = ["float32", "float16", "bfloat16"]


def _torch():
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA device")
    if not fusedrnn.cuda.is_available():
        raise SystemExit(f"--device cuda: fusedrnn's CUDA backend is unavailable: "
                         f"{fusedrnn.cuda.unavailable_reason()}")
    # Plain float32 GEMMs on both sides (cuDNN RNNs honour this flag too).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def time_interleaved(torch, runners, repeat):
    """{name: best seconds} over `repeat` rounds, one event-timed call of each runner per round."""
    for f in runners.values():  # warm-up: cuBLAS/cuDNN plans, allocator pools
        f()
    torch.cuda.synchronize()
    best = {name: float("inf") for name in runners}
    for _ in range(repeat):
        for name, f in runners.items():
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            f()
            end.record()
            end.synchronize()
            best[name] = min(best[name], start.elapsed_time(end) / 1e3)
    return best


def matmul_rate(torch, dtype, repeat, n=8192):
    a, b = (torch.randn(n, n, device="cuda", dtype=dtype) for _ in range(2))
    return 2 * n**3 / time_interleaved(torch, {"mm": lambda: a @ b}, repeat)["mm"]


def to_torch(torch, p, dtype):
    return {k: torch.from_numpy(v).to("cuda", dtype) for k, v in p.items()}


def make_fusedrnn(torch, cell, p):
    forward = fusedrnn.lstm_forward if cell == "lstm" else fusedrnn.gru_forward
    backward = fusedrnn.lstm_backward if cell == "lstm" else fusedrnn.gru_backward

    def train():
        out = forward(**p, training=True)
        backward(out[-1], torch.ones_like(out[0]))
    return {"inference": lambda: forward(**p), "training": train}


def make_cudnn(torch, cell, p):
    return torch_runners(torch, cell, p, module_to=("cuda", p["x"].dtype))


def main(args, parse_shape):
    """Runs the table for compare.py's parsed arguments (cells, shapes, modes, repeat, dtype)."""
    torch = _torch()
    dtype = getattr(torch, args.dtype)
    peak = matmul_rate(torch, dtype, args.repeat)
    name = torch.cuda.get_device_name()
    print(f"fusedrnn {fusedrnn.__version__} CUDA vs PyTorch {torch.__version__} cuDNN "
          f"{torch.backends.cudnn.version()} on {name}, {args.dtype}, I = H, min of "
          f"{args.repeat} interleaved runs; ratio = cuDNN ms / fusedrnn ms; "
          f"matmul 8192^3: {peak / 1e12:.1f} TFLOP/s")
    print(f"{'cell':<5} {'mode':<10} {'T x B x H':<12} {'fusedrnn ms':>11} {'% mm':>6} "
          f"{'cuDNN ms':>10} {'ratio':>6} {'target':>6}")
    results = {}
    # fusedrnn.pack_weights packs NumPy weights for the CPU loops; the GPU has no packed mode.
    modes = [mode for mode in args.modes if mode != "packed"]
    for cell in args.cells:
        for mode in modes:
            for text in args.shapes:
                T, B, H = parse_shape(text)
                p = to_torch(torch, make_problem(cell, T, B, H, dtype=np.float32), dtype)
                runners = {"fusedrnn": make_fusedrnn(torch, cell, p)[mode],
                           "cudnn": make_cudnn(torch, cell, p)[mode]}
                best = time_interleaved(torch, runners, args.repeat)
                results[(cell, mode, text)] = best
                ours, theirs = best["fusedrnn"] * 1e3, best["cudnn"] * 1e3
                fraction = 100 * flops(cell, (T, B, H), mode) / best["fusedrnn"] / peak
                target = "3.0" if B <= 16 else ("1.0" if B >= 64 else "-")
                print(f"{cell:<5} {mode:<10} {text:<12} {ours:>11.3f} {fraction:>5.0f}% "
                      f"{theirs:>10.3f} {theirs / ours:>6.2f} {target:>6}", flush=True)
    return results
