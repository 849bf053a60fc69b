"""Zero copy: inputs that are C-contiguous arrays of the call's dtype are used where they lie;
out= buffers of the sequence kernels are written in place, never copied, checked like inputs."""

import tracemalloc

import numpy as np
import pytest

import fusedrnn

T, B, I, H, P = 7, 3, 5, 11, 4


def lstm_args(dtype=np.float32, proj=False):
    rng = np.random.default_rng(0)
    out = P if proj else H
    a = dict(x=rng.standard_normal((T, B, I)).astype(dtype),
             w_ih=rng.uniform(-.3, .3, (4 * H, I)).astype(dtype),
             w_hh=rng.uniform(-.3, .3, (4 * H, out)).astype(dtype))
    if proj:
        a["w_hr"] = rng.uniform(-.3, .3, (P, H)).astype(dtype)
    return a


def gru_args(dtype=np.float32):
    rng = np.random.default_rng(1)
    return dict(x=rng.standard_normal((T, B, I)).astype(dtype),
                w_ih=rng.uniform(-.3, .3, (3 * H, I)).astype(dtype),
                w_hh=rng.uniform(-.3, .3, (3 * H, H)).astype(dtype))


@pytest.mark.parametrize("proj", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_writes_into_out(proj, dtype):
    a = lstm_args(dtype, proj)
    out_size = P if proj else H
    out = (np.full((T, B, out_size), np.nan, dtype), np.full((B, out_size), np.nan, dtype),
           np.full((B, H), np.nan, dtype))
    y, hn, cn, _ = fusedrnn.lstm_forward(**a, lengths=[7, 2, 0], out=out)
    assert y is out[0] and hn is out[1] and cn is out[2]
    want = fusedrnn.lstm_forward(**a, lengths=[7, 2, 0])[:3]
    for got, exp in zip(out, want):
        assert np.array_equal(got, exp)


@pytest.mark.parametrize("training", [False, True])
def test_gru_writes_into_out(training):
    a = gru_args()
    out = (np.empty((T, B, H), np.float32), np.empty((B, H), np.float32))
    y, hn, saved = fusedrnn.gru_forward(**a, out=out, training=training)
    assert y is out[0] and hn is out[1]
    want = fusedrnn.gru_forward(**a)
    assert np.array_equal(y, want[0]) and np.array_equal(hn, want[1])
    if training:  # the saved block is independent of where y went
        g = fusedrnn.gru_backward(saved, np.ones_like(y))
        _, _, saved2 = fusedrnn.gru_forward(**a, training=True)
        assert np.array_equal(g.dx, fusedrnn.gru_backward(saved2, np.ones_like(y)).dx)


@pytest.mark.parametrize("bad, error, match", [
    (lambda y, hn, cn: (y, hn), TypeError, "out: expected None or a tuple"),
    (lambda y, hn, cn: [y, hn, cn], TypeError, "out: expected None or a tuple"),
    (lambda y, hn, cn: (y[:-1], hn, cn), ValueError, r"out\[0\] \(y\): expected shape"),
    (lambda y, hn, cn: (y, hn.astype(np.float64), cn), TypeError, r"out\[1\] \(hn\)"),
    (lambda y, hn, cn: (y, hn, np.empty((B, 2 * H), np.float32)[:, ::2]), ValueError,
     r"out\[2\] \(cn\): expected a writeable C-contiguous"),
])
def test_bad_out_is_a_clear_error(bad, error, match):
    a = lstm_args()
    y, hn, cn = (np.empty((T, B, H), np.float32), np.empty((B, H), np.float32),
                 np.empty((B, H), np.float32))
    with pytest.raises(error, match=match):
        fusedrnn.lstm_forward(**a, out=bad(y, hn, cn))


def test_read_only_out_is_rejected():
    a = lstm_args()
    y = np.empty((T, B, H), np.float32)
    y.flags.writeable = False
    with pytest.raises(ValueError, match=r"out\[0\] \(y\): expected a writeable"):
        fusedrnn.lstm_forward(**a, out=(y, np.empty((B, H), np.float32),
                                        np.empty((B, H), np.float32)))


def test_out_overlapping_an_input_or_another_output_is_rejected():
    a = lstm_args()
    buf = np.empty((B, H), np.float32)
    with pytest.raises(ValueError, match=r"out\[1\] \(hn\): overlaps"):
        fusedrnn.lstm_forward(**a, out=(np.empty((T, B, H), np.float32), buf, buf))
    h0 = np.zeros((B, H), np.float32)
    with pytest.raises(ValueError, match=r"out\[1\] \(hn\): overlaps"):
        fusedrnn.lstm_forward(**a, h0=h0, out=(np.empty((T, B, H), np.float32), h0,
                                               np.empty((B, H), np.float32)))


def numpy_peak_bytes(fn):
    """Peak bytes NumPy allocated while fn ran (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_contiguous_inputs_are_not_copied(cell, training):
    """A 32 MB input of the right dtype and layout costs no NumPy allocation; the same input
    in Fortran order is copied once (which shows that the measure sees copies)."""
    G = 4 if cell == "lstm" else 3
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 64, 2048), dtype=np.float32)  # 32 MiB
    w_ih = rng.uniform(-.1, .1, (G * 2, 2048)).astype(np.float32)
    w_hh = rng.uniform(-.1, .1, (G * 2, 2)).astype(np.float32)
    forward = fusedrnn.lstm_forward if cell == "lstm" else fusedrnn.gru_forward
    small = numpy_peak_bytes(lambda: forward(x, w_ih, w_hh, training=training))
    assert small < 2**20, f"{small} bytes allocated: the input was copied"
    x_fortran = np.asfortranarray(x)
    copied = numpy_peak_bytes(lambda: forward(x_fortran, w_ih, w_hh, training=training))
    assert copied >= x.nbytes
