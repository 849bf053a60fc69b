"""pack_weights: weights packed once for many forward calls (``packed=``).

The packed forward must equal the reference, equal the unpacked forward bit for bit where both
multiply by panels (more than 32 rows), not depend on the thread count, and refuse a ``packed``
that does not belong to the call.
"""

import copy
import pickle
import threading

import numpy as np
import pytest

import fusedrnn
from conftest import (
    DTYPES,
    assert_named_close,
    assert_named_equal,
    describe,
    kernel_backward,
    kernel_forward,
    make_problem,
    reference_backward,
    reference_forward,
    rng_for,
)

CELLS = ["lstm", "lstm_proj", "gru", "gru_nolbr"]

# (T, B, I, H): one row (without packed: the direct loop); up to 32 rows (without packed:
# unpacked dot products); more rows (panels either way); H not a multiple of the panels' 16
# (float32) or 8 (float64) lanes; enough work a step for the two threads to claim parts
# (1x40x64: 4 parts of 16 units).
SIZES = [(1, 1, 5, 7), (3, 4, 9, 20), (1, 32, 6, 37), (2, 17, 16, 40), (9, 5, 7, 33),
         (1, 40, 64, 64), (5, 33, 3, 1)]


def _problem(cell, T, B, I, H, dtype, **kw):
    P = max(1, H // 2) if cell == "lstm_proj" else 0
    return make_problem(rng_for("packed", cell, T, B, I, H, dtype, tuple(kw.items())),
                        cell[:cell.find("_")] if "_" in cell else cell, T, B, I, H, P=P,
                        dtype=dtype, linear_before_reset=cell != "gru_nolbr", **kw)


def _pack(p):
    return fusedrnn.pack_weights(p.w_ih, p.w_hh, p.w_hr,
                                 linear_before_reset=p.linear_before_reset)


@pytest.mark.parametrize("lengths", [None, "random"], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T,B,I,H", SIZES)
@pytest.mark.parametrize("cell", CELLS)
def test_packed_forward_matches_reference_and_unpacked(cell, T, B, I, H, dtype, reverse,
                                                       lengths):
    if cell == "lstm_proj" and H < 2:
        pytest.skip("a projection needs P < H")
    p = _problem(cell, T, B, I, H, dtype, lengths=lengths, reverse=reverse)
    packed = _pack(p)
    out, saved = kernel_forward(p, training=True, packed=packed)
    ref_out, cache = reference_forward(p)
    assert_named_close(out, ref_out, dtype, context=describe(p) + " packed forward")
    # its saved block serves the backward as an unpacked forward's does
    assert_named_close(kernel_backward(p, saved), reference_backward(p, cache), dtype,
                       context=describe(p) + " backward after a packed forward")
    plain, _ = kernel_forward(p, training=False)
    again, _ = kernel_forward(p, training=False, packed=packed)
    assert_named_equal(again, out, describe(p) + " training flag")
    if T * B > 32:  # the same products as without packed: the same bits
        assert_named_equal(again, plain, describe(p) + " packed vs unpacked")


@pytest.mark.parametrize("cell", CELLS)
def test_packed_large_weights_with_the_whole_projection(cell):
    # weights over 16 MiB: more than 64 rows project the whole sequence with the BLAS before
    # the loop (w_ih's panels unused), fewer run it in the loop on the packed panels
    H = I = 640
    for T, B in ((3, 24), (1, 40), (1, 8)):
        p = _problem(cell, T, B, I, H, np.float64)
        packed = _pack(p)
        out, _ = kernel_forward(p, training=False, packed=packed)
        assert_named_close(out, reference_forward(p)[0], np.float64, describe(p))
        if T * B > 64:
            assert_named_equal(out, kernel_forward(p, training=False)[0], describe(p))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T,B", [(1, 24), (3, 40)])
def test_packed_thread_counts_give_bitwise_identical_results(cell, T, B, restore_threads):
    p = _problem(cell, T, B, 48, 131, np.float32, lengths="random")
    packed = _pack(p)
    results = []
    for threads in (1, 2, 3):
        fusedrnn.set_num_threads(threads)
        results.append(kernel_forward(p, training=False, packed=packed)[0])
    for threads, r in zip((2, 3), results[1:]):
        assert_named_equal(r, results[0], f"{threads} threads against 1")


def test_cells_take_packed_weights():
    rng = rng_for("packed cells")
    B, I, H = 6, 10, 24
    x, h, c = (rng.standard_normal(s) for s in ((B, I), (B, H), (B, H)))
    lstm_w = [rng.uniform(-0.2, 0.2, (4 * H, k)) for k in (I, H)]
    gru_w = [rng.uniform(-0.2, 0.2, (3 * H, k)) for k in (I, H)]
    got = fusedrnn.lstm_cell(x, h, c, *lstm_w, packed=fusedrnn.pack_weights(*lstm_w))
    for a, b in zip(got, fusedrnn.lstm_cell(x, h, c, *lstm_w)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    got = fusedrnn.gru_cell(x, h, *gru_w, packed=fusedrnn.pack_weights(*gru_w))
    np.testing.assert_allclose(got, fusedrnn.gru_cell(x, h, *gru_w), rtol=1e-12, atol=1e-12)


def test_packed_keeps_its_arrays_and_copies_non_contiguous_ones():
    rng = rng_for("packed arrays")
    H, I = 16, 8
    w_ih = rng.standard_normal((4 * H, I)).astype(np.float32)
    w_hh = rng.standard_normal((H, 4 * H)).astype(np.float32).T  # not C-contiguous
    packed = fusedrnn.pack_weights(w_ih, w_hh)
    assert packed.w_ih is w_ih  # C-contiguous: the array itself, not a copy
    assert packed.w_hh is not w_hh and np.array_equal(packed.w_hh, w_hh)
    assert (packed.gates, packed.hidden_size, packed.input_size) == (4, H, I)
    assert "LSTM H=16 I=8 float32" in repr(packed)
    x = rng.standard_normal((2, 20, I)).astype(np.float32)
    with pytest.raises(ValueError, match="packed: packed from other arrays"):
        fusedrnn.lstm_forward(x, w_ih, w_hh, packed=packed)  # w_hh is copied again
    want = fusedrnn.lstm_forward(x, w_ih, packed.w_hh)[0]
    del w_ih, w_hh  # the packed object keeps what it packed alive
    got = fusedrnn.lstm_forward(x, packed.w_ih, packed.w_hh, packed=packed)[0]
    assert np.array_equal(got, want)


def test_packed_is_a_snapshot():
    # documented: the products read the packed copy, so weights changed in place afterwards
    # are not seen until they are packed again
    p = _problem("lstm", 2, 20, 8, 16, np.float64)
    packed = fusedrnn.pack_weights(p.w_ih, p.w_hh)
    before = kernel_forward(p, training=False)[0]
    p.w_hh *= 2
    assert_named_equal(kernel_forward(p, training=False, packed=packed)[0], before)
    repacked = fusedrnn.pack_weights(p.w_ih, p.w_hh)
    assert_named_equal(kernel_forward(p, training=False, packed=repacked)[0],
                       kernel_forward(p, training=False)[0])


def test_python_threads_share_one_packed():
    p = _problem("gru", 2, 24, 12, 40, np.float32)
    packed = fusedrnn.pack_weights(p.w_ih, p.w_hh)
    want = kernel_forward(p, training=False, packed=packed)[0]
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(kernel_forward(p, training=False, packed=packed)[0])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 80
    for r in results:
        assert_named_equal(r, want)


class _OnDevice:
    """What the functional API takes for a GPU array (without touching a GPU)."""

    __cuda_array_interface__ = {}


def _bad_calls():
    rng = rng_for("packed errors")
    H, I = 8, 5
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x, w_ih, w_hh, g_ih, g_hh = f32(3, 2, I), f32(4 * H, I), f32(4 * H, H), f32(3 * H, I), f32(
        3 * H, H)
    lstm, gru = fusedrnn.pack_weights(w_ih, w_hh), fusedrnn.pack_weights(g_ih, g_hh)
    yield "other arrays", ValueError, "packed: packed from other arrays than this call's", \
        lambda: fusedrnn.lstm_forward(x, w_ih.copy(), w_hh, packed=lstm)
    yield "other cell", ValueError, r"packed: expected weights packed for gates=3, H=8, I=5, " \
        r"P=8, got gates=4, H=8, I=5, P=8", lambda: fusedrnn.gru_forward(x, g_ih, g_hh,
                                                                         packed=lstm)
    yield "other dtype", TypeError, r"packed: expected weights packed as float64 \(the dtype " \
        r"of x\), got float32", lambda: fusedrnn.gru_forward(
            x.astype(np.float64), g_ih.astype(np.float64), g_hh.astype(np.float64), packed=gru)
    yield "not packed", TypeError, "packed: expected the PackedWeights of " \
        "fusedrnn.pack_weights, got dict", lambda: fusedrnn.lstm_forward(x, w_ih, w_hh,
                                                                         packed={})
    yield "projection", ValueError, r"packed: packed without a projection \(w_hr\), this call " \
        r"has one", lambda: fusedrnn.lstm_forward(x, w_ih, w_hh, w_hr=f32(H, H), packed=lstm)
    w_hr = f32(4, H)
    lstmp = fusedrnn.pack_weights(w_ih, w_hh[:, :4].copy(), w_hr)
    yield "no projection", ValueError, r"packed: expected weights packed for gates=4, H=8, " \
        r"I=5, P=8, got gates=4, H=8, I=5, P=4", \
        lambda: fusedrnn.lstm_forward(x, w_ih, w_hh, packed=lstmp)
    yield "other w_hr", ValueError, "packed: packed from other arrays", \
        lambda: fusedrnn.lstm_forward(x, w_ih, lstmp.w_hh, w_hr=w_hr.copy(), packed=lstmp)
    yield "w_hr shape", ValueError, r"w_hh: expected shape \(4\*H=32, P=4\), got \(32, 8\)", \
        lambda: fusedrnn.pack_weights(w_ih, w_hh, w_hr)
    yield "gru w_hr", ValueError, r"w_hh: expected shape \(4\*H=20, P=4\) \(an LSTM with " \
        r"projection\), got \(24, 4\)", lambda: fusedrnn.pack_weights(g_ih, g_hh[:, :4],
                                                                        f32(4, 5))
    yield "original GRU", ValueError, "packed: packed for linear_before_reset=True, this call " \
        "has False", lambda: fusedrnn.gru_forward(x, g_ih, g_hh, linear_before_reset=False,
                                                 packed=gru)
    original = fusedrnn.pack_weights(g_ih, g_hh, linear_before_reset=False)
    yield "lbr GRU", ValueError, "packed: packed for linear_before_reset=False, this call " \
        "has True", lambda: fusedrnn.gru_forward(x, g_ih, g_hh, packed=original)
    yield "lstm nolbr", ValueError, "linear_before_reset: False is for a GRU", \
        lambda: fusedrnn.pack_weights(w_ih, w_hh, linear_before_reset=False)
    yield "cell", ValueError, "packed: packed from other arrays", \
        lambda: fusedrnn.gru_cell(x[0], None, g_ih, g_hh.copy(), packed=gru)
    yield "w_hh shape", ValueError, r"w_hh: expected shape \(4\*H, H\) \(an LSTM\) or " \
        r"\(3\*H, H\) \(a GRU\) with H >= 1, got \(32, 5\)", \
        lambda: fusedrnn.pack_weights(w_ih, w_hh[:, :5])
    yield "empty H", ValueError, "with H >= 1, got \\(0, 0\\)", \
        lambda: fusedrnn.pack_weights(f32(0, I), f32(0, 0))
    yield "w_ih shape", ValueError, r"w_ih: expected shape \(4\*H=32, I=5\), got \(24, 5\)", \
        lambda: fusedrnn.pack_weights(g_ih, w_hh)
    yield "w_hh dtype", TypeError, r"w_hh: expected dtype float32 \(the dtype of w_ih\), " \
        r"got float64", lambda: fusedrnn.pack_weights(w_ih, w_hh.astype(np.float64))
    gpu = _OnDevice()
    yield "gpu call", TypeError, r"packed: for CPU \(NumPy\) calls only, got GPU arrays", \
        lambda: fusedrnn.gru_forward(gpu, gpu, gpu, packed=gru)
    yield "gpu lstm", TypeError, "packed: for CPU", \
        lambda: fusedrnn.lstm_forward(gpu, gpu, gpu, packed=lstm)
    yield "gpu weights", TypeError, r"pack_weights: packs CPU \(NumPy\) weights only", \
        lambda: fusedrnn.pack_weights(gpu, gpu)
    yield "int weights", TypeError, "w_ih: expected dtype float32 or float64, got int64", \
        lambda: fusedrnn.pack_weights(np.zeros((32, 5), np.int64), w_hh)


@pytest.mark.parametrize("name,error,message,call", list(_bad_calls()),
                         ids=[c[0] for c in _bad_calls()])
def test_packed_errors_name_the_argument(name, error, message, call):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------------------
# The modules: pack_weights() in eval mode
# --------------------------------------------------------------------------------------


def _module_cases():
    yield "lstm", dict(num_layers=2, bidirectional=True)
    yield "gru", dict(num_layers=2, bidirectional=True)
    yield "lstm_proj", dict(num_layers=2, proj_size=5)
    yield "gru_nolbr", dict(linear_before_reset=False)


@pytest.mark.parametrize("name,kw", list(_module_cases()), ids=[c[0] for c in _module_cases()])
@pytest.mark.parametrize("B", [40, 3], ids=["panels", "few_rows"])
def test_module_pack_weights(name, kw, B):
    cls = fusedrnn.LSTM if name.startswith("lstm") else fusedrnn.GRU
    m = cls(7, 19, seed=1, dtype=np.float64, **kw).eval()
    x = rng_for("module packed", name, B).standard_normal((2, B, 7))
    plain = m(x)
    assert m.pack_weights() is m
    assert len(m._packs) == {"lstm": 4, "gru": 4, "lstm_proj": 2, "gru_nolbr": 1}[name]
    packed = m(x)
    for a, b in zip(_flat(packed), _flat(plain)):
        if 2 * B > 32:  # the same products: the same bits
            assert np.array_equal(a, b)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _flat(out):
    y, h = out
    return [y, *h] if isinstance(h, tuple) else [y, h]


def test_module_packs_are_dropped_when_the_weights_may_change():
    m = fusedrnn.LSTM(6, 16, num_layers=2, seed=2, dtype=np.float64)
    with pytest.raises(RuntimeError, match="pack_weights: for inference; call eval"):
        m.pack_weights()
    m.eval().pack_weights()
    x = rng_for("module packs dropped").standard_normal((3, 40, 6))
    before = m(x)[0]
    m.weight_hh_l1[...] *= 0.5  # in place: not seen, a snapshot (documented)
    assert np.array_equal(m(x)[0], before)
    m.pack_weights()  # packed again: now it is
    changed = m(x)[0]
    assert not np.array_equal(changed, before)
    m.train()
    assert m._packs == {}  # train() dropped them
    assert np.array_equal(m.eval()(x)[0], changed)  # 120 rows: unpacked, the same bits
    m.pack_weights()
    m.weight_hh_l0 = m.weight_hh_l0 * 2  # assignment drops them
    assert m._packs == {}
    m.pack_weights()
    m.load_state_dict({"bias_ih_l0": m.bias_ih_l0 + 1}, strict=False)  # and so does loading
    assert m._packs == {}
    m.pack_weights()
    assert copy.deepcopy(m)._packs == {} and pickle.loads(pickle.dumps(m))._packs == {}
    assert len(m._packs) == 2
