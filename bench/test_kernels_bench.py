"""pytest-benchmark suites for every kernel over the grid of issue #4, and a single step.

    python -m pytest bench/ --benchmark-group-by=group --benchmark-autosave
    python -m pytest bench/ --benchmark-compare            # against the last saved run

One group per (cell, mode, shape): fusedrnn and, where installed, PyTorch and ONNX Runtime
side by side (ONNX Runtime has no training). Set FUSEDRNN_BENCH_QUICK=1 for the small shapes
only. Timings are not tests: nothing here asserts a speed.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import PEERS, make_problem  # noqa: E402

# The grid, then one step of one sequence (a cell's or a decoder's step: the direct loop)
# and steps of 16 and 64 (a decoder's step over a batch: the team's loop on unpacked weights,
# or on panels, unless packed once), and a small hidden size over a larger batch (each thread
# its own batch rows, no barrier).
SHAPES = [(100, 1, 256), (100, 16, 256), (100, 64, 512), (50, 32, 1024), (1000, 1, 128),
          (1, 1, 256), (1, 16, 256), (1, 64, 256), (100, 32, 128)]
if os.environ.get("FUSEDRNN_BENCH_QUICK"):
    SHAPES = SHAPES[:2]


# fusedrnn-packed: fusedrnn's inference on weights packed once (pack_weights), as a decoder or
# a server calls it again and again.
@pytest.mark.parametrize("peer", ["fusedrnn", "fusedrnn-packed", "torch", "onnxruntime"])
@pytest.mark.parametrize("mode", ["inference", "training"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_kernel(benchmark, cell, shape, mode, peer):
    T, B, H = shape
    name, _, variant = peer.partition("-")
    try:
        runners = PEERS[name](cell, make_problem(cell, T, B, H))
    except ImportError:
        pytest.skip(f"{peer} is not installed")
    key = f"{mode} {variant}" if variant else mode
    if key not in runners:
        pytest.skip(f"{peer} has no {mode}")
    benchmark.group = f"{cell} {mode} {T}x{B}x{H}"
    benchmark(runners[key])
