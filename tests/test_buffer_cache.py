"""The buffer cache: large arrays that a call allocated (outputs, saved states, gradients, the
kernels' scratch) wait, once freed, for the next call of the same shape; empty_cache() frees
them. Results never depend on what a reused block held before."""

import functools

import numpy as np
import pytest

import fusedrnn
from fusedrnn import _core

# Large enough that the saved gates and the backward's gate gradients (> 1 MiB) are cached.
T, B, I, H = 48, 16, 40, 128

caches = pytest.mark.skipif(_core._cache_limit() == 0,
                            reason="this build caches nothing (sanitizers see every free)")


def training_step(cell, variant, threads, poison=False):
    rng = np.random.default_rng(3)
    G = 4 if cell.startswith("lstm") else 3
    k = 1 / np.sqrt(H)
    args = dict(x=rng.standard_normal((T, B, I)).astype(np.float32),
                w_ih=rng.uniform(-k, k, (G * H, I)).astype(np.float32),
                w_hh=rng.uniform(-k, k, (G * H, H)).astype(np.float32),
                b_ih=rng.uniform(-k, k, G * H).astype(np.float32),
                b_hh=rng.uniform(-k, k, G * H).astype(np.float32), _threads=threads)
    if variant == "lengths":
        args["lengths"] = rng.integers(0, T + 1, B)
    if variant == "reverse_lengths":
        args["lengths"], args["reverse"] = rng.integers(0, T + 1, B), True
    if cell == "lstm_proj":
        args["w_hh"] = args["w_hh"][:, :32].copy()
        args["w_hr"] = rng.uniform(-k, k, (32, H)).astype(np.float32)
    lstm = cell.startswith("lstm")
    forward = (fusedrnn.lstm_forward if lstm else functools.partial(
        fusedrnn.gru_forward, linear_before_reset=cell == "gru"))
    backward = fusedrnn.lstm_backward if lstm else fusedrnn.gru_backward
    if poison:  # every block the forward takes from the cache is full of NaN
        _core._poison_cache()
    *outs, saved = forward(**args, training=True)
    if poison:  # and so is every block the backward takes (the forward's scratch too)
        _core._poison_cache()
    grads = backward(saved, np.ones_like(outs[0]), _threads=threads)
    return [a.copy() for a in outs] + [g.copy() for g in grads if g is not None]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("variant", ["plain", "lengths", "reverse_lengths"])
@pytest.mark.parametrize("cell", ["lstm", "lstm_proj", "gru", "gru_original"])
def test_results_do_not_depend_on_reused_memory(cell, variant, threads):
    """A step that reuses blocks full of NaN gives the results of one on fresh memory."""
    fusedrnn.empty_cache()
    first = training_step(cell, variant, threads)
    assert _core._cached_bytes() > 0 or _core._cache_limit() == 0
    again = training_step(cell, variant, threads, poison=True)
    for a, b in zip(first, again):
        assert np.isfinite(b).all()
        assert np.array_equal(a, b)


@caches
def test_a_repeated_step_reuses_its_blocks_and_empty_cache_frees_them():
    fusedrnn.empty_cache()
    training_step("lstm", "plain", 2)
    held = _core._cached_bytes()
    assert held >= T * B * 4 * H * 4  # at least the saved gates
    for _ in range(3):
        training_step("lstm", "plain", 2)
        assert _core._cached_bytes() == held
    fusedrnn.empty_cache()
    assert _core._cached_bytes() == 0


def test_fusedrnn_cache_mb_bounds_the_cache():
    """FUSEDRNN_CACHE_MB sets the bound (0: nothing is kept); a value that is not a size
    leaves the default."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np, fusedrnn; from fusedrnn import _core\n"
            "x = np.ones((64, 16, 256), np.float32); w = np.full((1024, 256), .01, np.float32)\n"
            "fusedrnn.lstm_forward(x, w, w, training=True)\n"
            "print(_core._cache_limit() >> 20, _core._cached_bytes() >> 20)")
    got = {}
    for value in ("0", "3", "x"):
        env = dict(os.environ, FUSEDRNN_CACHE_MB=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        got[value] = tuple(int(v) for v in out)
    if _core._cache_limit() == 0:
        assert got == {"0": (0, 0), "3": (0, 0), "x": (0, 0)}  # sanitizer build
        return
    assert got["0"] == (0, 0)
    assert got["3"][0] == 3 and 0 < got["3"][1] <= 3  # the 4 MiB of gates do not fit
    assert got["x"][0] == 512 and got["x"][1] > 3


@caches
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_packed_weights_of_a_mib_or_more_are_cached(cell):
    """The packed w_ih and w_hh (4 and 3 MiB here, on one thread) come from the cache too, so
    that a repeated call does not fault their pages in again (a call at 100x1x1024 faulted
    4,085 pages without it)."""
    G, n = (4 if cell == "lstm" else 3), 512
    rng = np.random.default_rng(5)
    x = rng.standard_normal((80, 1, n)).astype(np.float32)  # 80 rows: the panels are packed
    w = rng.uniform(-0.05, 0.05, (G * n, n)).astype(np.float32)
    forward = fusedrnn.lstm_forward if cell == "lstm" else fusedrnn.gru_forward
    fusedrnn.empty_cache()
    y = forward(x, w, w, _threads=1)[0]
    held = _core._cached_bytes()
    assert held >= 2 * G * n * n * 4  # both weights' panels, back in the cache
    for _ in range(2):
        assert np.array_equal(forward(x, w, w, _threads=1)[0], y)
        assert _core._cached_bytes() == held


@caches
@pytest.mark.parametrize("cell, widths", [
    ("lstm", (4, 1, 1)),          # gates i f g o, c entering each step, h entering each step
    ("lstm_proj", (4, 1, 0.5)),   # h entering each step is P = H / 2 wide
    ("gru", (4, 1)),              # gates r z n and w_hn h + b_hn, h entering each step
    ("gru_original", (3, 1)),     # gates r z n, h entering each step
])
def test_training_saves_only_the_gates_and_states(cell, widths):
    """A training forward keeps what its backward needs and nothing more: the gates and the
    states entering each step (x and the weights by reference, no copies). Measured through the
    buffer cache, to which the saved arrays return when `saved` is freed; T * B * H floats are
    2 MiB, so each array is whole blocks."""
    steps, batch, hidden = 64, 32, 256
    G = 4 if cell.startswith("lstm") else 3
    rng = np.random.default_rng(5)
    args = dict(x=rng.standard_normal((steps, batch, 8)).astype(np.float32),
                w_ih=rng.uniform(-.1, .1, (G * hidden, 8)).astype(np.float32),
                w_hh=rng.uniform(-.1, .1, (G * hidden, hidden)).astype(np.float32))
    if cell == "lstm_proj":
        args["w_hh"] = args["w_hh"][:, :hidden // 2].copy()
        args["w_hr"] = rng.uniform(-.1, .1, (hidden // 2, hidden)).astype(np.float32)
    forward = (fusedrnn.lstm_forward if cell.startswith("lstm") else functools.partial(
        fusedrnn.gru_forward, linear_before_reset=cell == "gru"))
    fusedrnn.empty_cache()
    *outs, saved = forward(**args, training=True)
    del outs
    before = _core._cached_bytes()
    del saved
    unit = steps * batch * hidden * 4
    assert _core._cached_bytes() - before == sum(w * unit for w in widths)
