"""Argument checking and the runtime helpers: every bad call raises the right exception with a
message that names the argument (and, for shapes, shows expected and received), never
crashes; array-likes are accepted; NaN propagates; threads and the CLI work."""

import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import fusedrnn
from conftest import make_problem, rng_for

T, B, I, H, P = 3, 2, 5, 7, 4  # primes and a non-prime, so every dimension is distinguishable


def lstm_args(dtype=np.float64, proj=False):
    p = make_problem(rng_for("val-lstm", proj), "lstm", T, B, I, H, P=P if proj else 0,
                     dtype=dtype)
    return dict(x=p.x, w_ih=p.w_ih, w_hh=p.w_hh, b_ih=p.b_ih, b_hh=p.b_hh, h0=p.h0, c0=p.c0,
                w_hr=p.w_hr)


def gru_args(dtype=np.float64):
    p = make_problem(rng_for("val-gru"), "gru", T, B, I, H, dtype=dtype)
    return dict(x=p.x, w_ih=p.w_ih, w_hh=p.w_hh, b_ih=p.b_ih, b_hh=p.b_hh, h0=p.h0)


def run(kind, args, **kw):
    return (fusedrnn.lstm_forward if kind == "lstm" else fusedrnn.gru_forward)(
        **{**args, **kw})


KINDS = ["lstm", "gru"]


def args_for(kind, dtype=np.float64):
    return lstm_args(dtype) if kind == "lstm" else gru_args(dtype)


# --------------------------------------------------------------------------------------
# dtypes: TypeError naming the argument
# --------------------------------------------------------------------------------------

ARRAY_ARGS = {"lstm": ["w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0"],
              "gru": ["w_ih", "w_hh", "b_ih", "b_hh", "h0"]}


@pytest.mark.parametrize("x_dtype,other", [(np.float32, np.float64), (np.float64, np.float32)],
                         ids=["x32", "x64"])
@pytest.mark.parametrize("kind,name", [(k, n) for k in KINDS for n in ARRAY_ARGS[k]])
def test_dtype_mismatch_names_the_argument(kind, name, x_dtype, other):
    a = args_for(kind, x_dtype)
    a[name] = a[name].astype(other)
    with pytest.raises(TypeError, match=rf"^{name}:.*{np.dtype(x_dtype).name}.*"
                                        rf"{np.dtype(other).name}"):
        run(kind, a)


def test_dtype_mismatch_of_projection():
    a = lstm_args(np.float32, proj=True)
    a["w_hr"] = a["w_hr"].astype(np.float64)
    with pytest.raises(TypeError, match=r"^w_hr:"):
        fusedrnn.lstm_forward(**a)


@pytest.mark.parametrize("bad", [np.int64, np.int32, np.float16, np.complex128, np.bool_,
                                 np.object_])
@pytest.mark.parametrize("kind", KINDS)
def test_non_float_x_is_a_type_error(kind, bad):
    a = args_for(kind)
    a["x"] = a["x"].astype(bad)
    with pytest.raises(TypeError, match=r"^x:.*float32 or float64"):
        run(kind, a)


@pytest.mark.parametrize("kind", KINDS)
def test_integer_weights_are_a_type_error(kind):
    a = args_for(kind)
    a["w_hh"] = np.ones(a["w_hh"].shape, np.int64)
    with pytest.raises(TypeError, match=r"^w_hh:"):
        run(kind, a)


@pytest.mark.parametrize("kind", KINDS)
def test_non_array_argument_is_a_type_error(kind):
    a = args_for(kind)
    a["b_ih"] = "not an array"
    with pytest.raises(TypeError, match=r"^b_ih:"):
        run(kind, a)


# --------------------------------------------------------------------------------------
# shapes: ValueError naming the argument with expected and received shapes
# --------------------------------------------------------------------------------------


def _shape_re(shape):
    return re.escape(str(tuple(shape)))


def _bad_shapes(kind):
    G = 4 if kind == "lstm" else 3
    cases = [("w_ih", (G * H, I + 1), (G * H, I)), ("w_ih", (G * H + G, I), (G * H, I)),
             ("w_hh", (G * H, H + 1), (G * H, H)), ("b_ih", (G * H + 1,), (G * H,)),
             ("b_hh", (G * H - 1,), (G * H,)), ("b_ih", (G, H), (G * H,)),
             ("h0", (B + 1, H), (B, H)), ("h0", (B, H + 1), (B, H))]
    if kind == "lstm":
        cases += [("c0", (B, H + 2), (B, H)), ("c0", (B + 1, H), (B, H))]
    return [pytest.param(kind, *c, id=f"{kind}-{c[0]}{c[1]}") for c in cases]


@pytest.mark.parametrize("kind,name,shape,expected", _bad_shapes("lstm") + _bad_shapes("gru"))
def test_shape_mismatch_names_argument_and_both_shapes(kind, name, shape, expected):
    a = args_for(kind)
    a[name] = np.zeros(shape)
    with pytest.raises(ValueError) as e:
        run(kind, a)
    msg = str(e.value)
    assert msg.startswith(name + ":"), msg
    assert f"got {shape}" in msg, msg
    # The expected sizes, in order, each bare or after a name: "(4*H=28, I=5)".
    sizes = r", ".join(rf"(?:[^,()]*=)?{n}" for n in expected)
    assert re.search(rf"expected shape \({sizes},?\)", msg), msg


def test_projection_shape_mismatch():
    a = lstm_args(proj=True)
    a["w_hr"] = np.zeros((P, H + 1))
    with pytest.raises(ValueError, match=r"^w_hr:.*\(4, 8\)"):
        fusedrnn.lstm_forward(**a)
    a = lstm_args(proj=True)
    a["h0"] = np.zeros((B, H))  # h0 has P columns with a projection
    with pytest.raises(ValueError, match=rf"^h0:.*P={P}.*\({B}, {H}\)"):
        fusedrnn.lstm_forward(**a)


@pytest.mark.parametrize("name,shape", [("x", (T, B)), ("x", (T, B, I, 1)), ("x", ()),
                                        ("w_ih", (4 * H * I,)), ("w_hh", (4 * H, H, 1)),
                                        ("h0", (1, B, H)), ("b_ih", (1, 4 * H)),
                                        ("w_hr", (P,))])
def test_wrong_ndim_is_a_value_error(name, shape):
    a = lstm_args(proj=name == "w_hr")
    a[name] = np.zeros(shape)
    with pytest.raises(ValueError, match=rf"^{name}:.*{_shape_re(shape)}"):
        fusedrnn.lstm_forward(**a)


@pytest.mark.parametrize("kind,rows", [("lstm", 4 * H + 1), ("lstm", 2), ("lstm", 3 * H),
                                       ("gru", 3 * H + 1), ("gru", 4 * H), ("gru", 1)])
def test_w_hh_rows_not_divisible_by_gates(kind, rows):
    a = args_for(kind)
    a["w_hh"] = np.zeros((rows, H))
    G = 4 if kind == "lstm" else 3
    with pytest.raises(ValueError, match=rf"^w_hh:.*divisible by {G}.*\({rows}, {H}\)"):
        run(kind, a)


# --------------------------------------------------------------------------------------
# lengths
# --------------------------------------------------------------------------------------

BAD_LENGTHS = {
    "negative": np.array([1, -1]),
    "above_T": np.array([T + 1, 1]),
    "too_short": np.array([1]),
    "too_long": np.array([1, 2, 3]),
    "float": np.array([1.0, 2.0]),
    "2d": np.array([[1, 2]]),
    "bool": np.array([True, False]),
    "huge_uint64": np.array([2**63 + 1, 1], np.uint64),
    "scalar": np.array(2),
}


@pytest.mark.parametrize("bad", list(BAD_LENGTHS))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_lengths(kind, bad):
    with pytest.raises(ValueError, match=r"^lengths:"):
        run(kind, args_for(kind), lengths=BAD_LENGTHS[bad])


@pytest.mark.parametrize("kind", KINDS)
def test_bad_lengths_message_shows_the_value(kind):
    with pytest.raises(ValueError, match=rf"^lengths:.*\[0, T={T}\].*-3"):
        run(kind, args_for(kind), lengths=[2, -3])
    with pytest.raises(ValueError, match=rf"^lengths:.*B={B}.*\(3,\)"):
        run(kind, args_for(kind), lengths=[1, 1, 1])


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16, np.uint64])
def test_any_integer_lengths_dtype_is_accepted(dtype):
    a = gru_args()
    y, _, _ = fusedrnn.gru_forward(**a, lengths=np.array([T, 1], dtype))
    y64, _, _ = fusedrnn.gru_forward(**a, lengths=np.array([T, 1]))
    assert np.array_equal(y, y64)


# --------------------------------------------------------------------------------------
# backward: saved and upstream gradients
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved():
    lstm = fusedrnn.lstm_forward(**lstm_args(), training=True)[3]
    gru = fusedrnn.gru_forward(**gru_args(), training=True)[2]
    lstm_eval = fusedrnn.lstm_forward(**lstm_args(), training=False)[3]
    return dict(lstm=lstm, gru=gru, none=lstm_eval, object=object(), array=np.zeros(3))


@pytest.mark.parametrize("backward,wrong", [
    ("lstm_backward", "gru"), ("lstm_backward", "none"), ("lstm_backward", "object"),
    ("gru_backward", "lstm"), ("gru_backward", "none"), ("gru_backward", "array"),
    ("lstm_cell_backward", "gru"), ("lstm_cell_backward", "none"),
    ("gru_cell_backward", "lstm"), ("gru_cell_backward", "none"),
])
def test_backward_with_wrong_saved_names_saved(saved, backward, wrong):
    dy = np.zeros((T, B, H)) if not backward.endswith("cell_backward") else np.zeros((B, H))
    with pytest.raises(TypeError, match=r"^saved:") as e:
        getattr(fusedrnn, backward)(saved[wrong], dy)
    if wrong == "none":
        assert "training=True" in str(e.value)


@pytest.mark.parametrize("kind,name,shape", [
    ("lstm", "dy", (T, B, H + 1)), ("lstm", "dy", (T + 1, B, H)), ("lstm", "dy", (B, H)),
    ("lstm", "dhn", (B, H + 1)), ("lstm", "dcn", (B + 1, H)),
    ("gru", "dy", (T, B + 1, H)), ("gru", "dy", (T, B, H, 1)), ("gru", "dhn", (H,)),
])
def test_upstream_gradient_of_wrong_shape(saved, kind, name, shape):
    up = dict(dy=np.zeros((T, B, H)), dhn=None, dcn=None)
    if kind == "gru":
        del up["dcn"]
    up[name] = np.zeros(shape)
    backward = fusedrnn.lstm_backward if kind == "lstm" else fusedrnn.gru_backward
    with pytest.raises(ValueError, match=rf"^{name}:.*{_shape_re(shape)}"):
        backward(saved[kind], **up)


@pytest.mark.parametrize("kind", KINDS)
def test_upstream_gradient_of_wrong_dtype(saved, kind):
    backward = fusedrnn.lstm_backward if kind == "lstm" else fusedrnn.gru_backward
    with pytest.raises(TypeError, match=r"^dy:.*float64.*float32"):
        backward(saved[kind], np.zeros((T, B, H), np.float32))
    with pytest.raises(TypeError, match=r"^dhn:"):
        backward(saved[kind], np.zeros((T, B, H)), np.zeros((B, H), np.int32))


# --------------------------------------------------------------------------------------
# Cells: errors use the cell's argument names
# --------------------------------------------------------------------------------------


def cell_args(kind):
    a = args_for(kind)
    c = dict(x=a["x"][0], h=a["h0"], w_ih=a["w_ih"], w_hh=a["w_hh"], b_ih=a["b_ih"],
             b_hh=a["b_hh"])
    if kind == "lstm":
        c["c"] = a["c0"]
    return c


def run_cell(kind, args, **kw):
    a = {**args, **kw}
    if kind == "lstm":
        return fusedrnn.lstm_cell(a.pop("x"), a.pop("h"), a.pop("c"), **a)
    return fusedrnn.gru_cell(a.pop("x"), a.pop("h"), **a)


@pytest.mark.parametrize("kind,name,value,exc,pattern", [
    ("lstm", "h", np.zeros((B, H + 1)), ValueError, rf"\({B}, {H + 1}\)"),
    ("lstm", "c", np.zeros((B + 1, H)), ValueError, rf"\({B + 1}, {H}\)"),
    ("lstm", "h", np.zeros((B, H), np.float32), TypeError, "float32"),
    ("lstm", "c", np.zeros((B, H), np.float32), TypeError, "float32"),
    ("gru", "h", np.zeros((B + 1, H)), ValueError, rf"\({B + 1}, {H}\)"),
    ("gru", "h", np.zeros((B, H), np.float32), TypeError, "float32"),
    ("lstm", "x", np.zeros((T, B, I)), ValueError, rf"\({T}, {B}, {I}\)"),
    ("gru", "x", np.zeros(I), ValueError, rf"\({I},\)"),
    ("lstm", "w_ih", np.zeros((4 * H, I + 1)), ValueError, rf"\({4 * H}, {I + 1}\)"),
])
def test_cell_errors_use_the_cell_names(kind, name, value, exc, pattern):
    with pytest.raises(exc, match=rf"^{name}:.*{pattern}"):
        run_cell(kind, cell_args(kind), **{name: value})


@pytest.fixture(scope="module")
def cell_saved():
    return dict(lstm=run_cell("lstm", cell_args("lstm"), training=True)[2],
                gru=run_cell("gru", cell_args("gru"), training=True)[1])


@pytest.mark.parametrize("kind,name,shape", [
    ("lstm", "dh1", (B, H + 1)), ("lstm", "dh1", (B + 1, H)), ("lstm", "dc1", (B, H + 1)),
    ("gru", "dh1", (B, H + 1)), ("gru", "dh1", (B + 1, H)),
])
def test_cell_backward_errors_name_the_argument_and_received_shape(cell_saved, kind, name,
                                                                    shape):
    up = dict(dh1=np.zeros((B, H)))
    up[name] = np.zeros(shape)
    backward = fusedrnn.lstm_cell_backward if kind == "lstm" else fusedrnn.gru_cell_backward
    # The received shape is the one the caller passed (2-D), not an internal 3-D view of it.
    with pytest.raises(ValueError, match=rf"^{name}:.*got {_shape_re(shape)}"):
        backward(cell_saved[kind], **up)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_backward_wrong_ndim_and_dtype(cell_saved, kind):
    backward = fusedrnn.lstm_cell_backward if kind == "lstm" else fusedrnn.gru_cell_backward
    with pytest.raises(ValueError, match=rf"^dh1:.*\(1, {B}, {H}\)"):
        backward(cell_saved[kind], np.zeros((1, B, H)))
    with pytest.raises(TypeError, match=r"^dh1:.*float32"):
        backward(cell_saved[kind], np.zeros((B, H), np.float32))


# --------------------------------------------------------------------------------------
# Array-likes, NaN, sizes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_array_likes_are_accepted(kind):
    a = args_for(kind)
    lists = {k: v.tolist() for k, v in a.items() if v is not None}
    out = run(kind, a, lengths=np.array([T, 1]), training=True)
    out_l = run(kind, lists, lengths=[T, 1], training=True)
    for o, ol in zip(out[:-1], out_l[:-1]):
        assert ol.dtype == np.float64 and np.array_equal(o, ol)
    backward = fusedrnn.lstm_backward if kind == "lstm" else fusedrnn.gru_backward
    dy = np.ones((T, B, H))
    for g, gl in zip(backward(out[-1], dy), backward(out_l[-1], dy.tolist())):
        assert np.array_equal(g, gl)


def test_cell_array_likes_are_accepted():
    c = cell_args("lstm")
    h1, c1 = run_cell("lstm", c)
    h1l, c1l = run_cell("lstm", {k: v.tolist() for k, v in c.items()})
    assert np.array_equal(h1, h1l) and np.array_equal(c1, c1l)
    g = cell_args("gru")
    g_lists = {k: v.tolist() for k, v in g.items()}
    assert np.array_equal(run_cell("gru", g), run_cell("gru", g_lists))


def _run_with_timeout(fn, seconds=30):
    """Run fn in a daemon thread; fail (rather than hang the suite) if it does not return."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # pragma: no cover - reported below
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"did not return within {seconds} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.mark.parametrize("where", ["x", "h0", "w_hh"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_nolbr"])
def test_nan_propagates(kind, where):
    base = "lstm" if kind == "lstm" else "gru"
    a = args_for(base)
    extra = {} if kind != "gru_nolbr" else dict(linear_before_reset=False)
    clean = run(base, a, training=True, **extra)
    if where == "x":
        a["x"] = a["x"].copy()
        a["x"][1, 0, 2] = np.nan  # batch row 0 from step 1 on
    elif where == "h0":
        a["h0"] = a["h0"].copy()
        a["h0"][0, 3] = np.nan    # batch row 0 from the start
    else:
        a["w_hh"] = a["w_hh"].copy()
        a["w_hh"][0, 0] = np.nan  # everything
    out = _run_with_timeout(lambda: run(base, a, training=True, **extra))
    y = out[0]
    first = 1 if where == "x" else 0
    if where == "w_hh":
        # Unit 0 of the first gate at step 0, then (through the recurrence) everything.
        assert np.isnan(y[0, :, 0]).all() and np.isnan(y[1:]).all()
    else:
        assert np.isnan(y[first:, 0]).all()
        assert np.isfinite(y[:first, 0]).all()
        assert np.array_equal(y[:, 1], clean[0][:, 1])  # the other sequence is untouched
    backward = fusedrnn.lstm_backward if base == "lstm" else fusedrnn.gru_backward
    g = _run_with_timeout(lambda: backward(out[-1], np.ones_like(y)))
    assert np.isnan(g.dw_hh).any()
    if where != "w_hh":
        assert np.isfinite(g.dx[:, 1]).all()  # batch rows stay independent in backward


@pytest.mark.parametrize("value", [1e30, -1e30, 1e300])
@pytest.mark.parametrize("kind", KINDS)
def test_saturated_inputs_stay_finite(kind, value):
    a = args_for(kind)
    a["x"] = np.full_like(a["x"], value)
    y = run(kind, a)[0]
    assert np.isfinite(y).all() and (np.abs(y) <= 1).all()


def test_huge_sizes_are_rejected_before_anything_is_allocated():
    """Sizes come from shapes alone: empty arrays with huge dimensions, and zero-stride views
    whose copy would not fit any memory, are rejected by the size checks before any copy or
    output allocation (a MemoryError or a hang would mean they were not)."""
    f32 = np.float32
    with pytest.raises(ValueError, match=r"^x: T\*B = 2147483648\*2 exceeds the BLAS's 32-bit"):
        fusedrnn.lstm_forward(np.empty((2**31, 2, 0), f32), np.empty((4, 0), f32),
                              np.empty((4, 1), f32))
    H = 2**29 - 1  # an LSTM with projection to P=0: every input empty, the gates ~2^64 bytes
    with pytest.raises(ValueError, match=r"^gates: sizes too large to allocate"):
        fusedrnn.lstm_forward(np.empty((2**30 - 1, 2, 0), f32), np.empty((4 * H, 0), f32),
                              np.empty((4 * H, 0), f32), w_hr=np.empty((0, H), f32))
    w_hh = np.broadcast_to(f32(0), (3 * 2**30, 2**28))  # 3 EB if copied
    with pytest.raises(ValueError, match=r"^w_hh: 3\*H = 3\*1073741824 exceeds the BLAS's"):
        fusedrnn.gru_forward(np.empty((1, 1, 0), f32), np.empty((3 * 2**30, 0), f32), w_hh)
    x = np.broadcast_to(f32(0), (2**20, 2**20, 2**20))  # an input that is huge by itself
    with pytest.raises(ValueError, match=r"^x: T\*B = 1048576\*1048576 exceeds"):
        fusedrnn.gru_forward(x, np.empty((3, 2**20), f32), np.empty((3, 1), f32))


def test_empty_batch_with_huge_steps_returns_at_once():
    """B = 0 makes T*B = 0 rows: nothing to compute however large T is."""
    f32 = np.float32
    y, hn, cn, _ = _run_with_timeout(lambda: fusedrnn.lstm_forward(
        np.empty((2**40, 0, 3), f32), np.ones((8, 3), f32), np.ones((8, 2), f32)), 10)
    assert y.shape == (2**40, 0, 2) and hn.shape == (0, 2) and cn.shape == (0, 2)


# --------------------------------------------------------------------------------------
# Threads and the CLI
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_num_threads_round_trip(n, restore_threads):
    fusedrnn.set_num_threads(n)
    assert fusedrnn.get_num_threads() == n
    fusedrnn.set_num_threads(restore_threads)
    assert fusedrnn.get_num_threads() == restore_threads


@pytest.mark.parametrize("n,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                   ("2", TypeError)])
def test_set_num_threads_rejects(n, exc, restore_threads):
    with pytest.raises(exc):
        fusedrnn.set_num_threads(n)
    assert fusedrnn.get_num_threads() == restore_threads


def test_set_num_threads_zero_message():
    with pytest.raises(ValueError, match=r"^n:.*positive.*0"):
        fusedrnn.set_num_threads(0)


def test_info_cli():
    r = subprocess.run([sys.executable, "-m", "fusedrnn", "info"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    fields = dict(re.findall(r"^\s*(\w+):\s*(.*)$", r.stdout, flags=re.M))
    assert fields.get("version") == fusedrnn.__version__, r.stdout
    assert "openblas" in fields.get("blas", "").lower(), r.stdout
    assert re.search(r"kernels: \w+", fields["blas"]), r.stdout  # what the BLAS chose at load
    assert int(fields["threads"]) >= 1
    assert set(fields) >= {"version", "blas", "threads", "cuda", "cpu_simd"}


def test_info_cli_rejects_unknown_command():
    r = subprocess.run([sys.executable, "-m", "fusedrnn", "nonsense"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_an_equal_dtype_object_is_accepted():
    """dtypes compare by value: an unpickled float32 is float32 (it is not the same object)."""
    import pickle

    dt = pickle.loads(pickle.dumps(np.dtype(np.float32)))
    x = np.zeros((2, 1, 3), dt)
    y = fusedrnn.lstm_forward(x, np.zeros((4, 3), np.float32), np.zeros((4, 1), np.float32))[0]
    assert y.dtype == np.float32


def test_byte_swapped_input_is_a_type_error():
    x = np.zeros((2, 1, 3), np.dtype(">f4"))
    with pytest.raises(TypeError, match="x"):
        fusedrnn.lstm_forward(x, np.zeros((4, 3), np.float32), np.zeros((4, 1), np.float32))
