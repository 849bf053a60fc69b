"""Scale and numerics: float32 against float64 over long sequences, a T=100,000 training run
on a small stack, and memory that stays flat over 10,000 training calls."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fusedrnn
from fusedrnn import reference as ref

CELLS = ["lstm", "lstmp", "gru", "gru_original"]


def problem(cell, T, B, I, H, rng, P=None):
    """PyTorch's initialisation (uniform +-1/sqrt(H)); standard normal inputs."""
    G = 3 if cell.startswith("gru") else 4
    P = P if cell == "lstmp" else H
    k = 1 / np.sqrt(H)
    a = dict(x=rng.standard_normal((T, B, I)), w_ih=rng.uniform(-k, k, (G * H, I)),
             w_hh=rng.uniform(-k, k, (G * H, P)), b_ih=rng.uniform(-k, k, G * H),
             b_hh=rng.uniform(-k, k, G * H))
    if cell == "lstmp":
        a["w_hr"] = rng.uniform(-k, k, (P, H))
    return a


def train(cell, a, dy, lengths=None):
    """Forward with training=True, then backward: (y, final states, gradients)."""
    if cell.startswith("lstm"):
        y, hn, cn, saved = fusedrnn.lstm_forward(**a, lengths=lengths, training=True)
        return y, (hn, cn), fusedrnn.lstm_backward(saved, dy)
    y, hn, saved = fusedrnn.gru_forward(**a, lengths=lengths, training=True,
                                        linear_before_reset=cell == "gru")
    return y, (hn,), fusedrnn.gru_backward(saved, dy)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_stays_within_1e4_of_float64_over_1000_steps(cell):
    """Outputs and states within 1e-4 absolute; each gradient within 1e-4 of its own largest
    value (the weight gradients sum 4,000 rows: their size grows with T)."""
    rng = np.random.default_rng(11)
    a = problem(cell, 1000, 4, 16, 32, rng, P=8)
    dy = rng.standard_normal((1000, 4, a["w_hh"].shape[1]))
    y64, s64, g64 = train(cell, a, dy)
    y32, s32, g32 = train(cell, {k: v.astype(np.float32) for k, v in a.items()},
                          dy.astype(np.float32))
    assert y32.dtype == np.float32
    assert np.abs(y32 - y64).max() < 1e-4
    for s, e in zip(s32, s64):
        assert np.abs(s - e).max() < 1e-4
    for name in g64._fields:
        e, g = getattr(g64, name), getattr(g32, name)
        if e is not None:
            assert np.abs(g - e).max() <= 1e-4 * np.abs(e).max(), name


def train_states(cell, a, dy, h0=None, c0=None, dhn=None, dcn=None):
    """Like train, from given states and with upstream gradients of the final states."""
    if cell == "lstm":
        y, hn, cn, saved = fusedrnn.lstm_forward(**a, h0=h0, c0=c0, training=True)
        return y, (hn, cn), fusedrnn.lstm_backward(saved, dy, dhn, dcn)
    y, hn, saved = fusedrnn.gru_forward(**a, h0=h0, training=True)
    return y, (hn,), fusedrnn.gru_backward(saved, dy, dhn)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_100000_steps_train_at_batch_1_on_a_small_stack(cell):
    """T = 100,000, B = 1, float64: forward and backward run on a thread with a 256 KiB stack
    (the time loop keeps no per-step frames) and agree with the same sequence run as two
    halves chained by the chain rule: the second half starts from the first's final states,
    the first half's backward takes the second's dh0 (and dc0) as its dhn (dcn); outputs and
    input gradients concatenate, weight gradients add. (The reference takes minutes at this
    length; the kernels match it at every shorter length in test_kernels.py.)"""
    rng = np.random.default_rng(12)
    T, S = 100_000, 50_000
    a = problem(cell, T, 1, 3, 4, rng)
    dy = rng.standard_normal((T, 1, 4))
    result = {}
    old = threading.stack_size(256 * 1024)
    try:
        worker = threading.Thread(target=lambda: result.update(out=train_states(cell, a, dy)))
        worker.start()
        worker.join(120)
    finally:
        threading.stack_size(old)
    assert not worker.is_alive() and "out" in result
    y, states, g = result["out"]

    first = dict(a, x=a["x"][:S])
    second = dict(a, x=a["x"][S:])
    y1, states1, _ = train_states(cell, first, dy[:S])
    y2, states2, g2 = train_states(cell, second, dy[S:], *states1)
    _, _, g1 = train_states(cell, first, dy[:S], None, None, g2.dh0, getattr(g2, "dc0", None))
    close = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, np.concatenate([y1, y2]), **close)
    for s_full, s_two in zip(states, states2):
        np.testing.assert_allclose(s_full, s_two, **close)
    np.testing.assert_allclose(g.dx, np.concatenate([g1.dx, g2.dx]), **close)
    np.testing.assert_allclose(g.dh0, g1.dh0, **close)
    for name in ("dw_ih", "dw_hh", "db_ih", "db_hh"):
        np.testing.assert_allclose(getattr(g, name), getattr(g1, name) + getattr(g2, name),
                                   err_msg=name, **close)
    assert np.isfinite(g.dw_hh).all() and np.abs(g.dx).max() > 0


RSS_SCRIPT = r"""
import numpy as np, fusedrnn

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

rng = np.random.default_rng(0)
T, B, I, H = 6, 3, 5, 8
x = rng.standard_normal((T, B, I)).astype(np.float32)
w = {G: (rng.uniform(-.3, .3, (G * H, I)).astype(np.float32),
         rng.uniform(-.3, .3, (G * H, H)).astype(np.float32)) for G in (3, 4)}
b = rng.uniform(-.3, .3, 4 * H).astype(np.float32)
dy = np.ones((T, B, H), np.float32)
lengths = np.array([6, 2, 0])

def call(i):
    if i % 2:
        y, hn, cn, s = fusedrnn.lstm_forward(x, *w[4], b, b, lengths=lengths, training=True,
                                             reverse=i % 4 == 1)
        fusedrnn.lstm_backward(s, dy, hn, cn)
    else:
        y, hn, s = fusedrnn.gru_forward(x, *w[3], b[:3 * H], None, lengths=lengths,
                                        training=True, linear_before_reset=i % 4 == 0)
        fusedrnn.gru_backward(s, dy, hn)

for i in range(1000):
    call(i)
before = rss()
for i in range(10000):
    call(i)
print(before, rss())
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_rss_stays_flat_over_10000_training_calls():
    """10,000 forward+backward calls (LSTM and both GRUs, lengths, reverse) after 1,000 warm-up
    ones: resident memory grows by less than 1 MiB. A leak of the smallest saved block (6*3*8
    floats) per call would add 5.5 MiB."""
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT], capture_output=True, text=True,
                         timeout=300, check=True)
    before, after = (int(v) for v in out.stdout.split())
    assert after - before < 2**20, f"RSS grew by {after - before} bytes"
