"""The compiled kernels against the NumPy reference (fusedrnn.reference), forward outputs and
every gradient, plus the properties that do not need a reference: layout independence,
training flag, reuse of ``saved``, zero sizes, determinism, inputs left untouched.

float64 is compared at ~1e-10, float32 at ~1e-4 relative against the float64 reference on
the same inputs (see conftest.TOLERANCES for the reasons).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fusedrnn
from fusedrnn import reference as ref
from conftest import (
    DTYPES,
    assert_named_close,
    assert_named_equal,
    check_against_reference,
    describe,
    kernel_backward,
    kernel_forward,
    make_problem,
    reference_backward,
    reference_forward,
    rng_for,
)

# kind name -> (make_problem kind, projection?, linear_before_reset)
VARIANTS = {
    "lstm": ("lstm", False, True),
    "lstm_proj": ("lstm", True, True),
    "gru": ("gru", False, True),
    "gru_nolbr": ("gru", False, False),
}

# Hypothesis: sizes from lists that hold 1, primes and a power of two; T up to 50 but the
# number of examples kept modest so the whole file runs in seconds.
SETTINGS = settings(max_examples=100, deadline=None)
BATCH = st.sampled_from([1, 2, 3, 5, 7, 8, 13])
INPUT = st.sampled_from([1, 2, 3, 5, 7, 11, 16])
HIDDEN = st.sampled_from([1, 2, 3, 4, 5, 7, 11, 16])


@st.composite
def problems(draw, variant, dtype):
    kind, proj, lbr = VARIANTS[variant]
    T = draw(st.integers(1, 50))  # T = 0: test_zero_steps_* below
    B, I = draw(BATCH), draw(INPUT)
    H = draw(HIDDEN.filter(lambda h: h > 1) if proj else HIDDEN)
    P = draw(st.integers(1, H - 1)) if proj else 0  # PyTorch requires proj_size < hidden_size
    lengths = draw(st.one_of(
        st.none(),
        st.lists(st.integers(0, T), min_size=B, max_size=B),
        st.just("random"),  # always holds both 0 and T when B >= 2
    ))
    flags = {name: draw(st.booleans()) for name in ("b_ih", "b_hh", "h0", "c0", "dhn", "dcn")}
    reverse = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    return make_problem(np.random.default_rng(seed), kind, T, B, I, H, P=P, dtype=dtype,
                        lengths=lengths, reverse=reverse, linear_before_reset=lbr, **flags)


# --------------------------------------------------------------------------------------
# Sequences against the reference
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_sequence_matches_reference_hypothesis(variant, dtype, data):
    p = data.draw(problems(variant, dtype), label="problem")
    check_against_reference(p, context=describe(p))


# (T, B, I, H): 1s, primes, a long sequence and one large enough for the BLAS to thread; one row
# runs the direct forward, up to three rows in all (T * B <= 3) the direct backward
# (csrc/cpu/direct_loop.hpp), not the team's; up to 32 the team's forward reads the weights
# unpacked, and so does its backward for one or two steps (unpacked_gemm.hpp: blocks of 1-6
# rows, 1, 4 or 8 columns, short groups, and k not a multiple of the vector width among these).
FIXED_SIZES = [(1, 1, 1, 1), (2, 3, 5, 7), (13, 2, 3, 5), (5, 7, 11, 2), (50, 3, 4, 6),
               (17, 13, 31, 64), (1, 1, 6, 17), (2, 1, 9, 40), (1, 2, 5, 19), (3, 1, 4, 23),
               (4, 8, 33, 37), (1, 5, 20, 24), (8, 1, 16, 64)]


def _fixed_cases():
    for variant, (T, B, I, H) in itertools.product(VARIANTS, FIXED_SIZES):
        if variant == "lstm_proj" and H == 1:
            continue
        yield pytest.param(variant, T, B, I, H, id=f"{variant}-T{T}B{B}I{I}H{H}")


@pytest.mark.parametrize("lengths", [None, "random"], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant,T,B,I,H", list(_fixed_cases()))
def test_sequence_matches_reference_fixed(variant, T, B, I, H, dtype, reverse, lengths):
    kind, proj, lbr = VARIANTS[variant]
    p = make_problem(rng_for(variant, T, B, I, H, reverse, lengths), kind, T, B, I, H,
                     P=max(1, H // 2) if proj else 0, dtype=dtype, lengths=lengths,
                     reverse=reverse, linear_before_reset=lbr)
    check_against_reference(p, context=describe(p))


@pytest.mark.parametrize("missing", ["b_ih", "b_hh", "h0", "c0", "dhn", "dcn", "all"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_optional_arguments_none(variant, missing):
    """Each optional input left out on its own (and all at once) matches the reference, and
    a missing bias gives a None gradient."""
    kind, proj, lbr = VARIANTS[variant]
    names = ["b_ih", "b_hh", "h0", "c0", "dhn", "dcn"] if missing == "all" else [missing]
    p = make_problem(rng_for("none", variant, missing), kind, 6, 3, 5, 7, P=3 if proj else 0,
                     lengths=[6, 2, 0], linear_before_reset=lbr,
                     **{n: False for n in names})
    check_against_reference(p, context=describe(p))
    _, saved = kernel_forward(p)
    g = kernel_backward(p, saved)
    for b in ("b_ih", "b_hh"):
        assert (g["d" + b] is None) == (b in names)
    if kind == "lstm":
        assert (g["dw_hr"] is None) == (not proj)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_padding_semantics(variant, reverse, dtype):
    """Independently of the reference: y is exactly 0 past each length, hn is the state at
    the last valid step (h0 for length 0), and dy past a length has no effect."""
    kind, proj, lbr = VARIANTS[variant]
    lengths = [0, 7, 3, 1, 5]
    p = make_problem(rng_for("pad", variant, reverse), kind, 7, 5, 3, 5, P=2 if proj else 0,
                     dtype=dtype, lengths=lengths, reverse=reverse, linear_before_reset=lbr)
    out, saved = kernel_forward(p)
    for b, L in enumerate(lengths):
        assert not out["y"][L:, b].any()
        if L == 0:
            assert np.array_equal(out["hn"][b], p.h0[b])
        else:
            # The state after the last valid step is the y at that step.
            last = 0 if reverse else L - 1
            assert np.array_equal(out["hn"][b], out["y"][last, b])
    g1 = kernel_backward(p, saved)
    dy = p.dy.copy()
    for b, L in enumerate(lengths):
        dy[L:, b] = 1e6
    assert_named_equal(kernel_backward(p, saved, dy=dy), g1, context="dy in padding")


# --------------------------------------------------------------------------------------
# Cells against the reference
# --------------------------------------------------------------------------------------


@st.composite
def cell_cases(draw):
    return dict(B=draw(BATCH), I=draw(INPUT), H=draw(HIDDEN),
                b_ih=draw(st.booleans()), b_hh=draw(st.booleans()),
                states=draw(st.booleans()), dc1=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


def _cell_inputs(kind, c, dtype):
    G = 4 if kind == "lstm" else 3
    rng = np.random.default_rng(c["seed"])
    k = 1 / np.sqrt(c["H"])
    B, I, H = c["B"], c["I"], c["H"]

    def u(shape, bound=1.0):
        return rng.uniform(-bound, bound, shape).astype(dtype)

    return dict(x=rng.standard_normal((B, I)).astype(dtype), h=u((B, H)), c=u((B, H)),
                w_ih=u((G * H, I), k), w_hh=u((G * H, H), k),
                b_ih=u((G * H,), k) if c["b_ih"] else None,
                b_hh=u((G * H,), k) if c["b_hh"] else None,
                dh1=u((B, H)), dc1=u((B, H)) if c["dc1"] else None)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(c=cell_cases())
def test_lstm_cell_matches_reference(dtype, c):
    a = _cell_inputs("lstm", c, dtype)
    r = {k: None if v is None else v.astype(np.float64) for k, v in a.items()}
    # The kernel also takes None states (zeros); the reference is given the zeros.
    h, cc = (a["h"], a["c"]) if c["states"] else (None, None)
    if not c["states"]:
        r["h"], r["c"] = np.zeros_like(r["h"]), np.zeros_like(r["c"])
    h1, c1, saved = fusedrnn.lstm_cell(a["x"], h, cc, a["w_ih"], a["w_hh"], a["b_ih"],
                                       a["b_hh"], training=True)
    rh1, rc1, cache = ref.lstm_cell(r["x"], r["h"], r["c"], r["w_ih"], r["w_hh"], r["b_ih"],
                                    r["b_hh"])
    assert_named_close(dict(h1=h1, c1=c1), dict(h1=rh1, c1=rc1), dtype, context=str(c))
    g = fusedrnn.lstm_cell_backward(saved, a["dh1"], a["dc1"])
    assert isinstance(g, fusedrnn.LstmCellGrads)
    assert_named_close(g, ref.lstm_cell_backward(cache, r["dh1"], r["dc1"]), dtype,
                       context=str(c))


@pytest.mark.parametrize("lbr", [True, False], ids=["lbr", "nolbr"])
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(c=cell_cases())
def test_gru_cell_matches_reference(dtype, lbr, c):
    a = _cell_inputs("gru", c, dtype)
    r = {k: None if v is None else v.astype(np.float64) for k, v in a.items()}
    h = a["h"] if c["states"] else None
    if not c["states"]:
        r["h"] = np.zeros_like(r["h"])
    h1, saved = fusedrnn.gru_cell(a["x"], h, a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
                                  linear_before_reset=lbr, training=True)
    rh1, cache = ref.gru_cell(r["x"], r["h"], r["w_ih"], r["w_hh"], r["b_ih"], r["b_hh"],
                              linear_before_reset=lbr)
    assert_named_close(dict(h1=h1), dict(h1=rh1), dtype, context=str(c))
    g = fusedrnn.gru_cell_backward(saved, a["dh1"])
    assert isinstance(g, fusedrnn.GruCellGrads)
    assert_named_close(g, ref.gru_cell_backward(cache, r["dh1"]), dtype, context=str(c))


@pytest.mark.parametrize("B,I,H", [(1, 1, 1), (3, 5, 7), (13, 2, 11)])
def test_cells_without_training_return_outputs_only(B, I, H):
    rng = rng_for("cells", B, I, H)
    x, h, c = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w4, u4 = rng.uniform(-1, 1, (4 * H, I)), rng.uniform(-1, 1, (4 * H, H))
    w3, u3 = w4[: 3 * H], u4[: 3 * H]
    h1, c1 = fusedrnn.lstm_cell(x, h, c, w4, u4)
    rh1, rc1, _ = ref.lstm_cell(x, h, c, w4, u4)
    assert_named_close(dict(h1=h1, c1=c1), dict(h1=rh1, c1=rc1), np.float64)
    g1 = fusedrnn.gru_cell(x, h, w3, u3)
    assert isinstance(g1, np.ndarray)
    assert_named_close(dict(h1=g1), dict(h1=ref.gru_cell(x, h, w3, u3)[0]), np.float64)


# --------------------------------------------------------------------------------------
# Layouts: non-contiguous, Fortran-ordered, transposed views, negative strides, read-only
# --------------------------------------------------------------------------------------


def _fortran(a):
    return np.asfortranarray(a)


def _strided(a):
    # Every other element of a buffer twice as large in each dimension (a slice view).
    big = np.full(tuple(2 * n for n in a.shape), np.nan if a.dtype.kind == "f" else -1,
                  dtype=a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def _transposed(a):
    # A transposed view of a buffer laid out the other way round (x: batch-major memory seen
    # as time-major, as after x.transpose(1, 0, 2) of batch_first data).
    if a.ndim == 3:
        return np.ascontiguousarray(a.transpose(1, 0, 2)).transpose(1, 0, 2)
    return np.ascontiguousarray(a.T).T


def _reversed(a):
    return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[
        (slice(None, None, -1),) * a.ndim] if a.ndim else a


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = {"fortran": _fortran, "strided": _strided, "transposed": _transposed,
           "reversed": _reversed, "readonly": _readonly}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_layouts_give_identical_results(variant, dtype, layout):
    kind, proj, lbr = VARIANTS[variant]
    p = make_problem(rng_for("layout", variant), kind, 5, 3, 7, 5, P=2 if proj else 0,
                     dtype=dtype, lengths=[5, 0, 3], reverse=True, linear_before_reset=lbr)
    f = LAYOUTS[layout]
    inputs = dict(x=p.x, w_ih=p.w_ih, w_hh=p.w_hh, b_ih=p.b_ih, b_hh=p.b_hh, h0=p.h0,
                  lengths=p.lengths.astype(np.int32))
    if kind == "lstm":
        inputs.update(c0=p.c0, w_hr=p.w_hr)
    moved = {k: None if v is None else f(v) for k, v in inputs.items()}
    if layout in ("strided", "transposed", "reversed"):
        assert not moved["x"].flags.c_contiguous and not moved["w_ih"].flags.c_contiguous
    upstream = {k: None if v is None else f(v)
                for k, v in dict(dy=p.dy, dhn=p.dhn, dcn=p.dcn).items()}

    out, saved = kernel_forward(p)
    out_m, saved_m = kernel_forward(p, **moved)
    assert_named_equal(out_m, out, context=f"{layout} forward")
    assert_named_equal(kernel_backward(p, saved_m, **upstream), kernel_backward(p, saved),
                       context=f"{layout} backward")


@pytest.mark.parametrize("layout", ["fortran", "strided", "transposed"])
def test_cell_layouts_give_identical_results(layout):
    rng = rng_for("cell-layout", layout)
    B, I, H = 3, 5, 7
    a = dict(x=rng.standard_normal((B, I)), h=rng.standard_normal((B, H)),
             c=rng.standard_normal((B, H)), w_ih=rng.uniform(-.4, .4, (4 * H, I)),
             w_hh=rng.uniform(-.4, .4, (4 * H, H)), b=rng.uniform(-.4, .4, 4 * H))
    m = {k: LAYOUTS[layout](v) for k, v in a.items()}
    dh1 = rng.standard_normal((B, H))
    h1, c1, s = fusedrnn.lstm_cell(a["x"], a["h"], a["c"], a["w_ih"], a["w_hh"], a["b"],
                                   training=True)
    h1m, c1m, sm = fusedrnn.lstm_cell(m["x"], m["h"], m["c"], m["w_ih"], m["w_hh"], m["b"],
                                      training=True)
    assert_named_equal(dict(h1=h1m, c1=c1m), dict(h1=h1, c1=c1))
    assert_named_equal(fusedrnn.lstm_cell_backward(sm, LAYOUTS[layout](dh1)),
                       fusedrnn.lstm_cell_backward(s, dh1))
    g_args = [a["x"], a["h"], a["w_ih"][: 3 * H], a["w_hh"][: 3 * H], a["b"][: 3 * H]]
    gm_args = [LAYOUTS[layout](v) for v in g_args]
    assert_named_equal(dict(h1=fusedrnn.gru_cell(*gm_args)), dict(h1=fusedrnn.gru_cell(*g_args)))


# --------------------------------------------------------------------------------------
# training flag, reuse of saved, inputs untouched
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lengths", [None, [4, 0, 2]], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_training_flag_does_not_change_outputs(variant, reverse, lengths, dtype):
    kind, proj, lbr = VARIANTS[variant]
    p = make_problem(rng_for("train", variant, reverse), kind, 4, 3, 5, 7, P=3 if proj else 0,
                     dtype=dtype, lengths=lengths, reverse=reverse, linear_before_reset=lbr)
    out_eval, saved_eval = kernel_forward(p, training=False)
    out_train, saved_train = kernel_forward(p, training=True)
    assert saved_eval is None
    assert saved_train is not None
    assert_named_equal(out_eval, out_train, context="training=False vs True")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_saved_is_reusable(variant):
    """Two backwards from one saved give identical gradients, also with a different backward
    in between (backward must not consume or modify the saved state)."""
    kind, proj, lbr = VARIANTS[variant]
    p = make_problem(rng_for("reuse", variant), kind, 6, 3, 5, 7, P=3 if proj else 0,
                     lengths=[6, 1, 4], reverse=True, linear_before_reset=lbr)
    _, saved = kernel_forward(p)
    first = kernel_backward(p, saved)
    other = kernel_backward(p, saved, dy=2 * p.dy + 1)
    again = kernel_backward(p, saved)
    assert_named_equal(again, first, context="second backward")
    assert not np.allclose(other["dw_hh"], first["dw_hh"])  # the dy really was used


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_inputs_are_not_modified(variant):
    kind, proj, lbr = VARIANTS[variant]
    p = make_problem(rng_for("untouched", variant), kind, 6, 3, 5, 7, P=3 if proj else 0,
                     lengths=[6, 0, 4], linear_before_reset=lbr)
    arrays = {k: v for k, v in p.__dict__.items() if isinstance(v, np.ndarray)}
    before = {k: v.copy() for k, v in arrays.items()}
    out, saved = kernel_forward(p)
    grads = kernel_backward(p, saved)
    assert_named_equal(arrays, before, context="inputs after forward and backward")
    for result in list(out.values()) + [g for g in grads.values() if g is not None]:
        for a in arrays.values():
            assert not np.shares_memory(result, a)


# --------------------------------------------------------------------------------------
# Zero sizes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("states", [True, False], ids=["states", "nostates"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_zero_steps_semantics(variant, states, dtype):
    """T = 0: y is empty, the final states are the initial ones (zeros when None), dh0/dc0
    are dhn/dcn and the weight gradients are zeros."""
    kind, proj, lbr = VARIANTS[variant]
    B, I, H, P = 3, 5, 7, (2 if proj else 0)
    p = make_problem(rng_for("T0", variant), kind, 0, B, I, H, P=P, dtype=dtype, h0=states,
                     c0=states, dhn=states, dcn=states, lengths=[0, 0, 0] if states else None,
                     linear_before_reset=lbr)
    H_out = P or H
    out, saved = kernel_forward(p)
    assert out["y"].shape == (0, B, H_out) and out["y"].dtype == dtype
    assert np.array_equal(out["hn"], p.h0 if states else np.zeros((B, H_out)))
    if kind == "lstm":
        assert np.array_equal(out["cn"], p.c0 if states else np.zeros((B, H)))
    g = kernel_backward(p, saved)
    assert g["dx"].shape == (0, B, I)
    assert np.array_equal(g["dh0"], p.dhn if states else np.zeros((B, H_out)))
    if kind == "lstm":
        assert np.array_equal(g["dc0"], p.dcn if states else np.zeros((B, H)))
    for name in ("dw_ih", "dw_hh", "db_ih", "db_hh") + (("dw_hr",) if proj else ()):
        assert g[name].dtype == dtype and not g[name].any(), name


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_zero_steps_match_reference(variant):
    kind, proj, lbr = VARIANTS[variant]
    p = make_problem(rng_for("T0ref", variant), kind, 0, 3, 5, 7, P=2 if proj else 0,
                     linear_before_reset=lbr)
    check_against_reference(p, context=describe(p))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T", [0, 1, 5])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_zero_batch(variant, T, dtype):
    kind, proj, lbr = VARIANTS[variant]
    B, I, H, P = 0, 5, 7, (2 if proj else 0)
    p = make_problem(rng_for("B0", variant, T), kind, T, B, I, H, P=P, dtype=dtype,
                     lengths=np.zeros(0, np.int64), reverse=True, linear_before_reset=lbr)
    out, saved = kernel_forward(p)
    assert out["y"].shape == (T, 0, P or H) and out["hn"].shape == (0, P or H)
    g = kernel_backward(p, saved)
    assert g["dx"].shape == (T, 0, I) and g["dh0"].shape == (0, P or H)
    for name in ("dw_ih", "dw_hh", "db_ih", "db_hh") + (("dw_hr",) if proj else ()):
        assert not g[name].any(), name
    if T:
        check_against_reference(p, context=describe(p))


# --------------------------------------------------------------------------------------
# Determinism and threads
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bitwise_deterministic(variant, threads, restore_threads):
    kind, proj, lbr = VARIANTS[variant]
    fusedrnn.set_num_threads(threads)
    p = make_problem(rng_for("det", variant), kind, 9, 17, 33, 64, P=31 if proj else 0,
                     dtype=np.float32, lengths="random", reverse=True,
                     linear_before_reset=lbr)
    runs = []
    for _ in range(3):
        out, saved = kernel_forward(p)
        runs.append({**out, **kernel_backward(p, saved)})
    assert_named_equal(runs[1], runs[0], context="run 2 vs run 1")
    assert_named_equal(runs[2], runs[0], context="run 3 vs run 1")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_thread_counts_match_reference(variant, dtype, threads, restore_threads):
    kind, proj, lbr = VARIANTS[variant]
    fusedrnn.set_num_threads(threads)
    p = make_problem(rng_for("threads", variant), kind, 7, 29, 37, 96, P=47 if proj else 0,
                     dtype=dtype, lengths="random", linear_before_reset=lbr)
    check_against_reference(p, context=f"threads={threads} " + describe(p))


@pytest.mark.parametrize("B", [13, 61])
@pytest.mark.parametrize("variant", ["lstm", "gru"])
def test_weights_too_large_for_cache_match_reference(variant, B, restore_threads):
    """Panel sets over 4 MiB (one thread, H = I = 600) take the GEMM path that tiles the rows:
    61 rows make two tiles of 6-, 4- and 1-row blocks, the last tile taking the odd rows."""
    kind, proj, lbr = VARIANTS[variant]
    fusedrnn.set_num_threads(1)
    p = make_problem(rng_for("big panels", variant, B), kind, 2, B, 600, 600, dtype=np.float32,
                     linear_before_reset=lbr)
    check_against_reference(p, context=describe(p))


@pytest.mark.parametrize("B", [22, 20, 5], ids=["whole", "unpacked64", "unpacked"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_whole_sequence_projection_matches_reference(variant, reverse, B, restore_threads):
    """w_ih and w_hh over 16 MiB together (H = I = 864, float32) take the input projection of
    the whole sequence as one BLAS GEMM before the time loop, instead of per thread in chunks
    (66 rows); but not for up to 64 rows, which the loop reads unpacked (60 rows: weights this
    large; 15 rows: any): against the reference, with lengths (padding rows, scattered steps
    when reversed), and bitwise the same on one thread as on two."""
    kind, proj, lbr = VARIANTS[variant]
    p = make_problem(rng_for("whole projection", variant, reverse), kind, 3, B, 864, 864,
                     P=432 if proj else 0, dtype=np.float32, lengths="random", reverse=reverse,
                     linear_before_reset=lbr)
    G = 4 if kind == "lstm" else 3
    assert G * 864 * (864 + (p.P or 864)) * 4 > 16 << 20
    fusedrnn.set_num_threads(2)
    check_against_reference(p, context=describe(p))
    two, _ = kernel_forward(p)
    inference, _ = kernel_forward(p, training=False)
    fusedrnn.set_num_threads(1)
    one, _ = kernel_forward(p)
    for name in one:
        assert np.array_equal(one[name], two[name]), f"{name}: 1 and 2 threads differ"
        assert np.array_equal(inference[name], two[name]), f"{name}: inference differs"


# --------------------------------------------------------------------------------------
# The helper itself: a wrong answer must fail (guards against a vacuous comparison).
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_comparison_detects_a_perturbed_gradient(dtype):
    p = make_problem(rng_for("perturb"), "lstm", 5, 3, 4, 5, dtype=dtype)
    out, saved = kernel_forward(p)
    grads = kernel_backward(p, saved)
    ref_grads = reference_backward(p, reference_forward(p)[1])
    assert_named_close(grads, ref_grads, dtype)
    grads["dw_hh"] = grads["dw_hh"].copy()
    grads["dw_hh"][1, 2] += 1e-3 * max(1.0, np.abs(ref_grads["dw_hh"]).max())
    with pytest.raises(AssertionError, match="dw_hh"):
        assert_named_close(grads, ref_grads, dtype)
