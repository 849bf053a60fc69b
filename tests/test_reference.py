"""Checks of the NumPy reference (fusedrnn.reference), the oracle every kernel is tested against.

Three independent witnesses:
  1. central finite differences in float64 for every gradient the reference returns;
  2. semantic checks of variable lengths and direction (padding, final states, reversal);
  3. PyTorch (nn.LSTM, nn.GRU, their cells) and ONNX Runtime (GRU, linear_before_reset=0),
     each only when installed.

Sizes are tiny (T <= 5, B <= 3, I, H <= 4) and include 1 and primes, so the file runs fast.
"""

import zlib

import numpy as np
import pytest

from fusedrnn import reference as ref

# Finite differences in float64: with eps = 1e-6 the truncation error is O(eps^2) ~ 1e-12
# and the rounding error ~ 1e-16 * |L| / eps ~ 1e-10 for the O(1) losses used here, so
# rtol 1e-6 / atol 1e-8 leave ~100x margin while still catching any wrong term.
FD_EPS = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-8
# Comparisons with PyTorch / ONNX Runtime in float64: same math, different summation order.
PEER_RTOL, PEER_ATOL = 1e-10, 1e-12

KINDS = ["lstm", "lstm_proj", "gru", "gru_nolbr"]

# (T, B, I, H, lengths): sizes 1 and primes; lengths include 0, 1, full and a middle value.
SEQ_CASES = [
    pytest.param(1, 1, 1, 1, None, id="T1B1I1H1"),
    pytest.param(5, 3, 2, 3, None, id="T5B3I2H3"),
    pytest.param(3, 2, 4, 4, None, id="T3B2I4H4"),
    pytest.param(5, 3, 2, 3, [5, 0, 2], id="T5B3-len502"),
    pytest.param(3, 2, 3, 2, [1, 3], id="T3B2-len13"),
    pytest.param(2, 1, 2, 3, [0], id="T2B1-len0"),
    pytest.param(4, 3, 1, 2, [4, 4, 4], id="T4B3-lenfull"),
]


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

def _rng(*key):
    """A generator seeded from the test's parameters, so each case is reproducible."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def make_params(kind, rng, T, B, I, H, *, bias=True, dtype=np.float64):
    """Random inputs for one layer of ``kind``; weights scaled to keep gates unsaturated."""
    G = 4 if kind.startswith("lstm") else 3
    P = 2 if kind == "lstm_proj" else 0
    H_out = P or H
    s = 1.0 / np.sqrt(H)

    def r(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    p = dict(x=r(T, B, I), w_ih=r(G * H, I, scale=s), w_hh=r(G * H, H_out, scale=s),
             b_ih=r(G * H, scale=s) if bias else None,
             b_hh=r(G * H, scale=s) if bias else None,
             h0=r(B, H_out, scale=0.5))
    if G == 4:
        p["c0"] = r(B, H, scale=0.5)
    if P:
        p["w_hr"] = r(P, H, scale=s)
    return p


def run_forward(kind, p, lengths=None, reverse=False):
    """Forward of ``kind``; returns (outputs tuple, cache)."""
    if kind.startswith("lstm"):
        y, hn, cn, cache = ref.lstm_forward(
            p["x"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["h0"], p["c0"],
            w_hr=p.get("w_hr"), lengths=lengths, reverse=reverse)
        return (y, hn, cn), cache
    y, hn, cache = ref.gru_forward(
        p["x"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["h0"],
        lengths=lengths, reverse=reverse, linear_before_reset=(kind == "gru"))
    return (y, hn), cache


def run_backward(kind, cache, upstream):
    """Backward of ``kind``; returns gradients keyed by the input name (dw_ih -> w_ih)."""
    if kind.startswith("lstm"):
        g = ref.lstm_backward(cache, *upstream)
    else:
        g = ref.gru_backward(cache, *upstream)
    return {k[1:]: v for k, v in g.items()}


def loss(outputs, upstream):
    """L = sum(dy*y) + sum(dhn*hn) (+ sum(dcn*cn)); a None upstream term is left out."""
    return sum(float(np.sum(u * o)) for u, o in zip(upstream, outputs) if u is not None)


def numeric_grad(f, p, name):
    """Central finite difference of the scalar f(p) with respect to every entry of p[name]."""
    a = p[name]
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + FD_EPS
        lp = f(p)
        a[idx] = old - FD_EPS
        lm = f(p)
        a[idx] = old
        g[idx] = (lp - lm) / (2 * FD_EPS)
    return g


def check_all_grads(f, p, grads):
    """Every input that is not None has an analytic gradient matching finite differences."""
    checked = 0
    for name, a in p.items():
        if a is None:
            assert grads[name] is None, f"d{name} should be None when {name} is None"
            continue
        assert grads[name].shape == a.shape, name
        np.testing.assert_allclose(grads[name], numeric_grad(f, p, name),
                                   rtol=FD_RTOL, atol=FD_ATOL, err_msg=f"d{name}")
        checked += 1
    assert checked >= 4


def random_upstream(rng, outputs, which="all"):
    """Upstream gradients for (y, hn[, cn]): 'all', 'y_only' (dhn, dcn None) or
    'final_only' (dy None)."""
    ups = [rng.standard_normal(o.shape) for o in outputs]
    if which == "y_only":
        ups[1:] = [None] * (len(ups) - 1)
    elif which == "final_only":
        ups[0] = None
    return ups


# --------------------------------------------------------------------------------------
# 1. Finite differences
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("T,B,I,H,lengths", SEQ_CASES)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_grads_match_finite_differences(kind, reverse, T, B, I, H, lengths):
    rng = _rng(kind, reverse, T, B, I, H, lengths)
    p = make_params(kind, rng, T, B, I, H)
    outputs, cache = run_forward(kind, p, lengths, reverse)
    ups = random_upstream(rng, outputs)
    grads = run_backward(kind, cache, ups)
    check_all_grads(lambda q: loss(run_forward(kind, q, lengths, reverse)[0], ups), p, grads)


@pytest.mark.parametrize("which", ["all", "y_only", "final_only"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_grads_without_biases_and_upstream(kind, reverse, which):
    """Biases None (their gradients None); missing dy or dhn/dcn count as zeros."""
    T, B, I, H, lengths = 3, 2, 3, 2, [3, 1]
    rng = _rng(kind, reverse, which)
    p = make_params(kind, rng, T, B, I, H, bias=False)
    outputs, cache = run_forward(kind, p, lengths, reverse)
    ups = random_upstream(rng, outputs, which)
    grads = run_backward(kind, cache, ups)
    check_all_grads(lambda q: loss(run_forward(kind, q, lengths, reverse)[0], ups), p, grads)


def test_initial_state_grads_are_arrays_when_states_were_none():
    rng = _rng("none-states")
    p = make_params("lstm_proj", rng, 3, 2, 2, 3)
    _, _, _, cache = ref.lstm_forward(p["x"], p["w_ih"], p["w_hh"], w_hr=p["w_hr"])
    g = ref.lstm_backward(cache, rng.standard_normal((3, 2, 2)))
    assert g["dh0"].shape == (2, 2) and g["dc0"].shape == (2, 3)
    assert np.any(g["dh0"] != 0) and np.any(g["dc0"] != 0)
    p = make_params("gru", rng, 3, 2, 2, 3)
    _, _, cache = ref.gru_forward(p["x"], p["w_ih"], p["w_hh"])
    g = ref.gru_backward(cache, rng.standard_normal((3, 2, 3)))
    assert g["dh0"].shape == (2, 3) and np.any(g["dh0"] != 0)
    assert g["db_ih"] is None and g["db_hh"] is None


CELL_CASES = [pytest.param(1, 1, 1, id="B1I1H1"), pytest.param(3, 2, 3, id="B3I2H3"),
              pytest.param(2, 4, 4, id="B2I4H4")]


def _lstm_cell_loss(p, ups):
    h1, c1, _ = ref.lstm_cell(p["x"], p["h"], p["c"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    return loss((h1, c1), ups)


@pytest.mark.parametrize("with_dc1", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("B,I,H", CELL_CASES)
def test_lstm_cell_grads_match_finite_differences(B, I, H, bias, with_dc1):
    rng = _rng("lstm_cell", B, I, H, bias, with_dc1)
    q = make_params("lstm", rng, 1, B, I, H, bias=bias)
    p = dict(x=q["x"][0], h=q["h0"], c=q["c0"], w_ih=q["w_ih"], w_hh=q["w_hh"],
             b_ih=q["b_ih"], b_hh=q["b_hh"])
    h1, c1, cache = ref.lstm_cell(**p)
    ups = [rng.standard_normal(h1.shape), rng.standard_normal(c1.shape) if with_dc1 else None]
    g = ref.lstm_cell_backward(cache, *ups)
    assert set(g) == {"dx", "dh", "dc", "dw_ih", "dw_hh", "db_ih", "db_hh"}
    check_all_grads(lambda q: _lstm_cell_loss(q, ups), p, {k[1:]: v for k, v in g.items()})


@pytest.mark.parametrize("lbr", [True, False], ids=["lbr", "nolbr"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("B,I,H", CELL_CASES)
def test_gru_cell_grads_match_finite_differences(B, I, H, bias, lbr):
    rng = _rng("gru_cell", B, I, H, bias, lbr)
    q = make_params("gru", rng, 1, B, I, H, bias=bias)
    p = dict(x=q["x"][0], h=q["h0"], w_ih=q["w_ih"], w_hh=q["w_hh"],
             b_ih=q["b_ih"], b_hh=q["b_hh"])

    def f(p):
        return loss((ref.gru_cell(**p, linear_before_reset=lbr)[0],), [dh1])

    h1, cache = ref.gru_cell(**p, linear_before_reset=lbr)
    dh1 = rng.standard_normal(h1.shape)
    g = ref.gru_cell_backward(cache, dh1)
    assert set(g) == {"dx", "dh", "dw_ih", "dw_hh", "db_ih", "db_hh"}
    check_all_grads(f, p, {k[1:]: v for k, v in g.items()})


# --------------------------------------------------------------------------------------
# 2. Forward semantics: lengths, direction, dtype
# --------------------------------------------------------------------------------------

def _one_sequence(p, b, L):
    """p restricted to batch entry b and its first L steps, without lengths."""
    q = dict(p)
    q["x"] = p["x"][:L, b:b + 1]
    for k in ("h0", "c0"):
        if k in p:
            q[k] = p[k][b:b + 1]
    return q


LEN_CASES = [pytest.param(5, [5, 0, 2], id="len502"), pytest.param(4, [1, 4, 3], id="len143"),
             pytest.param(3, [0, 0, 0], id="len000")]


@pytest.mark.parametrize("T,lengths", LEN_CASES)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("kind", KINDS)
def test_lengths_match_each_sequence_run_alone(kind, reverse, T, lengths):
    """y is 0 past each length; the valid part and the final state equal a run of that
    sequence's own valid prefix (time-reversed for reverse=True); length 0 returns h0/c0."""
    B = len(lengths)
    p = make_params(kind, _rng("len", kind, reverse, T, lengths), T, B, 3, 2)
    outputs, _ = run_forward(kind, p, np.array(lengths), reverse)
    y, states = outputs[0], outputs[1:]
    for b, L in enumerate(lengths):
        assert np.all(y[L:, b] == 0), "y must be exactly 0 at padded positions"
        if L == 0:
            assert np.array_equal(states[0][b], p["h0"][b])
            if len(states) == 2:
                assert np.array_equal(states[1][b], p["c0"][b])
            continue
        q = _one_sequence(p, b, L)
        if reverse:
            # Reverse over the valid prefix == forward over the time-reversed prefix.
            q["x"] = q["x"][::-1].copy()
        alone, _ = run_forward(kind, q)
        y_alone = alone[0][::-1] if reverse else alone[0]
        np.testing.assert_allclose(y[:L, b], y_alone[:, 0], rtol=1e-14, atol=1e-15)
        assert np.all(y[:L, b] != 0)
        for s, s_alone in zip(states, alone[1:]):
            np.testing.assert_allclose(s[b], s_alone[0], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_reverse_equals_forward_on_flipped_time(kind):
    p = make_params(kind, _rng("flip", kind), 4, 2, 3, 3)
    rev, _ = run_forward(kind, p, reverse=True)
    q = dict(p, x=p["x"][::-1].copy())
    fwd, _ = run_forward(kind, q)
    np.testing.assert_allclose(rev[0], fwd[0][::-1], rtol=1e-14, atol=1e-15)
    for a, b in zip(rev[1:], fwd[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    # And the direction matters at all (the check above could not pass by accident).
    fwd_unflipped, _ = run_forward(kind, p)
    assert not np.allclose(rev[1], fwd_unflipped[1])


def test_cells_equal_one_step_sequences():
    p = make_params("lstm", _rng("cell-seq"), 1, 3, 2, 3)
    h1, c1, _ = ref.lstm_cell(p["x"][0], p["h0"], p["c0"], p["w_ih"], p["w_hh"],
                              p["b_ih"], p["b_hh"])
    (y, hn, cn), _ = run_forward("lstm", p)
    np.testing.assert_allclose(h1, hn, rtol=1e-15)
    np.testing.assert_allclose(c1, cn, rtol=1e-15)
    p = make_params("gru", _rng("cell-seq-gru"), 1, 3, 2, 3)
    for lbr, kind in [(True, "gru"), (False, "gru_nolbr")]:
        h1, _ = ref.gru_cell(p["x"][0], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                             linear_before_reset=lbr)
        np.testing.assert_allclose(h1, run_forward(kind, p)[0][1], rtol=1e-15)


def test_cells_treat_missing_states_as_zeros():
    p = make_params("lstm", _rng("cell-none"), 1, 2, 3, 2)
    zeros = np.zeros_like(p["h0"])
    got = ref.lstm_cell(p["x"][0], None, None, p["w_ih"], p["w_hh"])[:2]
    want = ref.lstm_cell(p["x"][0], zeros, zeros, p["w_ih"], p["w_hh"])[:2]
    np.testing.assert_array_equal(got, want)
    assert np.any(got[0] != 0)
    p = make_params("gru", _rng("cell-none-gru"), 1, 2, 3, 2)
    np.testing.assert_array_equal(ref.gru_cell(p["x"][0], None, p["w_ih"], p["w_hh"])[0],
                                  ref.gru_cell(p["x"][0], zeros, p["w_ih"], p["w_hh"])[0])


def test_lstm_cell_by_hand():
    """A single unit with hand-computed gates pins the gate order i, f, g, o."""
    x, h, c = np.array([[1.0]]), np.array([[0.0]]), np.array([[0.5]])
    w_ih = np.array([[1.0], [2.0], [3.0], [4.0]])
    w_hh = np.zeros((4, 1))
    h1, c1, _ = ref.lstm_cell(x, h, c, w_ih, w_hh)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    c_expected = sig(2.0) * 0.5 + sig(1.0) * np.tanh(3.0)
    np.testing.assert_allclose(c1, [[c_expected]], rtol=1e-15)
    np.testing.assert_allclose(h1, [[sig(4.0) * np.tanh(c_expected)]], rtol=1e-15)


def test_gru_cell_by_hand():
    """One unit: pins the gate order r, z, n and where the reset gate applies."""
    x, h = np.array([[1.0]]), np.array([[0.5]])
    w_ih = np.array([[1.0], [2.0], [3.0]])
    w_hh = np.array([[0.5], [-1.0], [2.0]])
    b_hh = np.array([0.0, 0.0, 0.25])
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    r, z = sig(1.0 + 0.25), sig(2.0 - 0.5)
    n_lbr = np.tanh(3.0 + r * (2.0 * 0.5 + 0.25))
    n_nolbr = np.tanh(3.0 + 2.0 * (r * 0.5) + 0.25)
    for lbr, n in [(True, n_lbr), (False, n_nolbr)]:
        h1, _ = ref.gru_cell(x, h, w_ih, w_hh, None, b_hh, linear_before_reset=lbr)
        np.testing.assert_allclose(h1, [[(1 - z) * n + z * 0.5]], rtol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_in_float32_out(kind):
    p = make_params(kind, _rng("f32", kind), 3, 2, 3, 2, dtype=np.float32)
    outputs, cache = run_forward(kind, p, [3, 1], True)
    assert all(o.dtype == np.float32 for o in outputs)
    grads = run_backward(kind, cache, [np.ones_like(o) for o in outputs])
    assert all(g.dtype == np.float32 for g in grads.values() if g is not None)
    p64 = {k: v.astype(np.float64) for k, v in p.items() if v is not None}
    out64, _ = run_forward(kind, p64, [3, 1], True)
    for a, b in zip(outputs, out64):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lengths", [[4, 1], [-1, 2], [1]])
def test_bad_lengths_raise(lengths):
    p = make_params("gru", _rng("bad"), 3, 2, 2, 2)
    with pytest.raises(ValueError, match="lengths"):
        run_forward("gru", p, np.array(lengths))


def test_saturated_gates_stay_finite():
    """Huge pre-activations must give 0/1 gates, not overflow or NaN (underflow is fine)."""
    p = make_params("lstm", _rng("sat"), 2, 2, 2, 2)
    p["x"] *= 1e4
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        (y, hn, cn), _ = run_forward("lstm", p)
    assert np.all(np.isfinite(y)) and np.all(np.abs(hn) <= 1)


# --------------------------------------------------------------------------------------
# 3. Peers: PyTorch and ONNX Runtime
# --------------------------------------------------------------------------------------

def _torch_rnn(torch, kind, I, H, bias, bidirectional):
    nn = torch.nn
    if kind.startswith("lstm"):
        return nn.LSTM(I, H, bias=bias, bidirectional=bidirectional,
                       proj_size=2 if kind == "lstm_proj" else 0, dtype=torch.float64)
    return nn.GRU(I, H, bias=bias, bidirectional=bidirectional, dtype=torch.float64)


TORCH_NAMES = dict(w_ih="weight_ih_l0", w_hh="weight_hh_l0", b_ih="bias_ih_l0",
                   b_hh="bias_hh_l0", w_hr="weight_hr_l0")


@pytest.mark.parametrize("lengths", [None, [5, 1, 3]], ids=["full", "packed"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru"])
def test_sequence_matches_torch(kind, reverse, bias, lengths):
    """Forward and every gradient equal torch's; reverse = the reverse direction of a
    bidirectional module; lengths = a packed sequence (enforce_sorted=False)."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, B, I, H = 5, 3, 3, 4
    rng = _rng("torch", kind, reverse, bias, lengths)
    p = make_params(kind, rng, T, B, I, H, bias=bias)
    is_lstm = kind.startswith("lstm")
    d = int(reverse)                               # the direction index in torch's module
    suffix = "_reverse" if reverse else ""
    rnn = _torch_rnn(torch, kind, I, H, bias, bidirectional=reverse)
    params = dict(rnn.named_parameters())
    with torch.no_grad():
        for ours, theirs in TORCH_NAMES.items():
            if p.get(ours) is not None:
                params[theirs + suffix].copy_(torch.from_numpy(p[ours]))

    # Torch's states are (D, B, H); the other direction (if any) gets random states.
    def states(a):
        s = rng.standard_normal((1 + d,) + a.shape)
        s[d] = a
        return torch.tensor(s, requires_grad=True)

    x = torch.tensor(p["x"], requires_grad=True)
    h0 = states(p["h0"])
    c0 = states(p["c0"]) if is_lstm else None
    inp = x if lengths is None else pack_padded_sequence(x, torch.tensor(lengths),
                                                        enforce_sorted=False)
    out, hx = rnn(inp, (h0, c0) if is_lstm else h0)
    y_t = out if lengths is None else pad_packed_sequence(out, total_length=T)[0]
    H_out = p["h0"].shape[1]
    y_t = y_t[..., d * H_out:(d + 1) * H_out]
    finals_t = [hx[0][d], hx[1][d]] if is_lstm else [hx[d]]

    outputs, cache = run_forward(kind, p, None if lengths is None else np.array(lengths),
                                 reverse)
    for ours, theirs in zip(outputs, [y_t] + finals_t):
        np.testing.assert_allclose(ours, theirs.detach().numpy(),
                                   rtol=PEER_RTOL, atol=PEER_ATOL)

    ups = random_upstream(rng, outputs)
    l_t = sum((torch.from_numpy(u) * o).sum() for u, o in zip(ups, [y_t] + finals_t))
    l_t.backward()
    grads = run_backward(kind, cache, ups)
    theirs = dict(x=x.grad, h0=h0.grad[d])
    if is_lstm:
        theirs["c0"] = c0.grad[d]
    for ours, name in TORCH_NAMES.items():
        if p.get(ours) is not None:
            theirs[ours] = params[name + suffix].grad
    for name, g in theirs.items():
        np.testing.assert_allclose(grads[name], g.numpy(), rtol=PEER_RTOL, atol=PEER_ATOL,
                                   err_msg=f"d{name}")
    for name in ("b_ih", "b_hh"):
        if not bias:
            assert grads[name] is None


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("B,I,H", CELL_CASES)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_matches_torch(kind, B, I, H, bias):
    torch = pytest.importorskip("torch")
    rng = _rng("torch-cell", kind, B, I, H, bias)
    p = make_params(kind, rng, 1, B, I, H, bias=bias)
    is_lstm = kind == "lstm"
    cls = torch.nn.LSTMCell if is_lstm else torch.nn.GRUCell
    cell = cls(I, H, bias=bias, dtype=torch.float64)
    params = dict(cell.named_parameters())
    with torch.no_grad():
        for ours in ("w_ih", "w_hh", "b_ih", "b_hh"):
            if p[ours] is not None:
                params[TORCH_NAMES[ours][:-3]].copy_(torch.from_numpy(p[ours]))
    x = torch.tensor(p["x"][0], requires_grad=True)
    h = torch.tensor(p["h0"], requires_grad=True)
    args = (p["x"][0], p["h0"]) + ((p["c0"],) if is_lstm else ())
    weights = (p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    if is_lstm:
        c = torch.tensor(p["c0"], requires_grad=True)
        outs_t = cell(x, (h, c))
        h1, c1, cache = ref.lstm_cell(*args, *weights)
        outs = (h1, c1)
    else:
        outs_t = (cell(x, h),)
        h1, cache = ref.gru_cell(*args, *weights)
        outs = (h1,)
    for a, b in zip(outs, outs_t):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=PEER_RTOL, atol=PEER_ATOL)
    ups = [rng.standard_normal(o.shape) for o in outs]
    sum((torch.from_numpy(u) * o).sum() for u, o in zip(ups, outs_t)).backward()
    g = ref.lstm_cell_backward(cache, *ups) if is_lstm else ref.gru_cell_backward(cache, *ups)
    theirs = dict(dx=x.grad, dh=h.grad)
    if is_lstm:
        theirs["dc"] = c.grad
    for ours in ("w_ih", "w_hh", "b_ih", "b_hh"):
        if p[ours] is not None:
            theirs["d" + ours] = params[TORCH_NAMES[ours][:-3]].grad
    for name, t in theirs.items():
        np.testing.assert_allclose(g[name], t.numpy(), rtol=PEER_RTOL, atol=PEER_ATOL,
                                   err_msg=name)


def _onnx_gru(onnx, T, B, I, H, reverse, with_lengths):
    """A one-node ONNX model: GRU with linear_before_reset=0 (the ONNX default), float32
    (ONNX Runtime's CPU GRU has no double kernel)."""
    from onnx import TensorProto, helper
    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("X", f32, [T, B, I]),
              helper.make_tensor_value_info("W", f32, [1, 3 * H, I]),
              helper.make_tensor_value_info("R", f32, [1, 3 * H, H]),
              helper.make_tensor_value_info("B", f32, [1, 6 * H]),
              helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [B]),
              helper.make_tensor_value_info("initial_h", f32, [1, B, H])]
    names = ["X", "W", "R", "B", "sequence_lens" if with_lengths else "", "initial_h"]
    node = helper.make_node("GRU", names, ["Y", "Y_h"], hidden_size=H,
                            linear_before_reset=0,
                            direction="reverse" if reverse else "forward")
    outputs = [helper.make_tensor_value_info("Y", f32, [T, 1, B, H]),
               helper.make_tensor_value_info("Y_h", f32, [1, B, H])]
    graph = helper.make_graph([node], "gru", [i for i, n in zip(inputs, names) if n], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.mark.parametrize("lengths", [None, [5, 1, 3], [2, 0, 5]], ids=["full", "len513", "len205"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_gru_without_linear_before_reset_matches_onnxruntime(reverse, lengths):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    T, B, I, H = 5, 3, 2, 3
    # float32 inputs; the reference runs them in float64, ONNX Runtime in float32, so the
    # tolerance is float32 rounding over a few steps, far below the O(0.1) difference
    # between the two GRU variants checked at the end.
    p = make_params("gru_nolbr", _rng("onnx", reverse, lengths), T, B, I, H,
                    dtype=np.float32)

    def zrh(a):
        # Ours (PyTorch) r, z, n -> ONNX z, r, h along the first axis.
        r, z, n = np.split(a, 3, axis=0)
        return np.concatenate([z, r, n], axis=0)

    feeds = dict(X=p["x"], W=zrh(p["w_ih"])[None], R=zrh(p["w_hh"])[None],
                 B=np.concatenate([zrh(p["b_ih"]), zrh(p["b_hh"])])[None],
                 initial_h=p["h0"][None])
    if lengths is not None:
        feeds["sequence_lens"] = np.array(lengths, dtype=np.int32)
    sess = ort.InferenceSession(_onnx_gru(onnx, T, B, I, H, reverse, lengths is not None),
                                providers=["CPUExecutionProvider"])
    y_onnx, hn_onnx = sess.run(None, feeds)
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    (y, hn), _ = run_forward("gru_nolbr", p64,
                             None if lengths is None else np.array(lengths), reverse)
    np.testing.assert_allclose(y, y_onnx[:, 0], rtol=1e-5, atol=1e-6)
    # ONNX Runtime returns Y_h = 0, not initial_h, for a sequence of length 0; we follow
    # PyTorch's packed-sequence rule (the initial state), checked in
    # test_lengths_match_each_sequence_run_alone, so those rows are left out here.
    valid = slice(None) if lengths is None else np.array(lengths) > 0
    np.testing.assert_allclose(hn[valid], hn_onnx[0][valid], rtol=1e-5, atol=1e-6)
    # The variant really differs from PyTorch's (else this test could not tell them apart).
    (y_lbr, _), _ = run_forward("gru", p64, None if lengths is None else np.array(lengths),
                                reverse)
    assert not np.allclose(y, y_lbr)
