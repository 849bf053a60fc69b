"""The machine probes that bench/ reads its ceilings from (fusedrnn._core._fma_peak and
_stream_read_rate) at every SIMD level this CPU runs, and bench/ceiling.py's floors."""

import json
import math
import os
import subprocess
import sys

import pytest

import fusedrnn
from fusedrnn import _core

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import ceiling  # noqa: E402
from peers import flops  # noqa: E402

SCRIPT = r"""
import json, fusedrnn
from fusedrnn import _core
print(json.dumps({"simd": fusedrnn.info()["cpu_simd"], "peak": _core._fma_peak(0.05, 1),
                  "rates": [_core._stream_read_rate(n, 0.05, 1) for n in (4, 24 << 10, 3 << 20)]}))
"""


@pytest.mark.parametrize("level", ["generic", "avx2", "avx512"])
def test_probes_read_and_multiply_at_every_level(level):
    env = dict(os.environ, FUSEDRNN_SIMD=level)
    out = json.loads(subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True,
                                    capture_output=True, text=True).stdout)
    if out["simd"] != level:
        pytest.skip(f"this CPU runs {out['simd']}, not {level}")
    assert math.isfinite(out["peak"]) and out["peak"] > 0
    for rate in out["rates"]:
        # Each vector read feeds one multiply-add, 2 FLOPs a 4-byte lane, so no more than 2 bytes
        # a FLOP: a probe whose loads were optimised away, or that counted bytes it never read,
        # would break this bound.
        assert 0 < rate <= 2 * out["peak"] * 1.25


@pytest.mark.parametrize("nbytes", [0, -4])
def test_stream_read_rate_wants_bytes(nbytes):
    with pytest.raises(ValueError, match="bytes must be positive"):
        _core._stream_read_rate(nbytes, 0.01, 1)


def test_stream_read_rate_splits_among_threads():
    threads = fusedrnn.get_num_threads()
    assert _core._stream_read_rate(64 << 10, 0.02, 2) > 0
    assert fusedrnn.get_num_threads() == threads  # the team is left as it was


class FakeMachine:
    """A machine of 1e11 FLOP/s that reads 1e11 bytes/s at every size."""

    peak = 1e11

    def read_seconds(self, nbytes):
        return nbytes / 1e11


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("mode", ["inference", "training"])
def test_compute_bound_floor_is_the_flops_at_the_peak(cell, mode):
    shape = (100, 64, 512)  # a step's FLOPs take far longer than its read of w_hh
    serial, overlapped = ceiling.floors(cell, shape, mode, FakeMachine())
    assert serial == pytest.approx(flops(cell, shape, mode) / FakeMachine.peak)
    assert overlapped == pytest.approx(serial)


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_batch_one_floor_is_bound_by_the_reads(mode):
    T, B, H = shape = (100, 1, 256)
    G, passes = 4, 2 if mode == "training" else 1
    read = G * H * H * 4 / 1e11  # 10.5 us a step, against 5.2 us of FLOPs
    assert read > 2 * B * G * H * H / FakeMachine.peak
    batched = 2 * T * G * H * H * (1 if mode == "inference" else 4)
    serial, overlapped = ceiling.floors("lstm", shape, mode, FakeMachine())
    assert serial == pytest.approx(batched / 1e11 + passes * T * read)
    # training's FLOPs (three times inference's) outlast its two passes of reads here
    expected = passes * T * read if mode == "inference" else flops("lstm", shape, mode) / 1e11
    assert overlapped == pytest.approx(expected)
    assert max(flops("lstm", shape, mode) / 1e11, passes * T * read) == pytest.approx(overlapped)
    assert overlapped < serial


def test_an_l1_of_each_share_is_read_at_the_l1_rate():
    machine = ceiling.Machine.__new__(ceiling.Machine)
    machine.threads, machine.l1d = 2, 1000
    machine.read_rate = lambda nbytes: 1000.0 if nbytes <= 2 * 1000 else 100.0
    # 5000 bytes a thread: 1000 at 500 bytes/s a thread, 4000 at 50
    assert machine.read_seconds(10_000) == pytest.approx(2 + 80)
    assert machine.read_seconds(1_000) == pytest.approx(1)  # all of it in L1
