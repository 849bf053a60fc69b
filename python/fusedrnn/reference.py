"""Pure-NumPy reference LSTM and GRU: the specification the kernels are tested against.

Written for clarity, not speed. Every forward has a hand-written backward (explicit
backpropagation through time, no autograd), and the test suite checks both against
central finite differences in float64 and, when installed, against PyTorch and ONNX Runtime.

Conventions (PyTorch's, see DESIGN.md section 2):

    T time steps, B batch, I input size, H hidden size, P projection size, G gates.
    x (T, B, I) time-major; states (B, H); y (T, B, H).
    w_ih (G*H, I), w_hh (G*H, H), b_ih and b_hh (G*H,).
    Gate order: LSTM i, f, g, o (G=4); GRU r, z, n (G=3).
    LSTM with projection (w_hr (P, H)): w_hh (4H, P), h (B, P), y (T, B, P), c (B, H).

Missing biases (None) count as zeros; missing initial states count as zeros; missing
upstream gradients count as zeros. Arithmetic runs in the dtype of x.

Structure: one function computes one time step forward (``_lstm_step``, ``_gru_step``)
and one its backward; the sequence functions only loop over time, handle variable
lengths, and accumulate weight gradients. The public cell functions are thin wrappers
over the step functions.
"""

import numpy as np

__all__ = [
    "lstm_cell",
    "lstm_cell_backward",
    "gru_cell",
    "gru_cell_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
]


# --------------------------------------------------------------------------------------
# Activations and their derivatives (expressed through the activation's output, which is
# what the forward saves).
# --------------------------------------------------------------------------------------

def sigmoid(a):
    """Logistic function, evaluated without overflow for large |a|."""
    # exp(-|a|) never overflows; pick the algebraically equal form per sign.
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def dsigmoid(s):
    """d sigmoid(a) / da, given s = sigmoid(a)."""
    return s * (1.0 - s)


def dtanh(t):
    """d tanh(a) / da, given t = tanh(a)."""
    return 1.0 - t * t


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

def _as(a, dtype):
    """``a`` as an array of ``dtype`` (None stays None)."""
    return None if a is None else np.asarray(a, dtype=dtype)


def _bias_or_zeros(b, rows, dtype):
    """The bias, or zeros when it is None (a missing bias adds nothing)."""
    return np.zeros(rows, dtype) if b is None else b


def _zeros_if_none(a, shape, dtype):
    """``a``, or zeros of ``shape`` when it is None (missing states and gradients)."""
    return np.zeros(shape, dtype) if a is None else np.asarray(a, dtype=dtype)


def _split(a, n):
    """Split the last axis of ``a`` into ``n`` equal gate blocks."""
    return np.split(a, n, axis=-1)


def _step_mask(lengths, T, B, dtype):
    """mask[t, b, 0] = 1 where step t of sequence b is valid (t < lengths[b]), else 0.

    The same mask serves both directions: a forward pass runs t = 0..lengths[b]-1 and a
    reverse pass runs t = lengths[b]-1..0, so in both the valid steps are t < lengths[b];
    in the reverse pass the invalid steps t >= lengths[b] come first and leave the
    initial state untouched, so sequence b starts at its own last valid step.
    """
    if lengths is None:
        return np.ones((T, B, 1), dtype)
    lengths = np.asarray(lengths)
    if lengths.shape != (B,):
        raise ValueError(f"lengths: expected shape ({B},), got {lengths.shape}")
    if not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"lengths: expected an integer array, got {lengths.dtype}")
    if np.any(lengths < 0) or np.any(lengths > T):
        raise ValueError(f"lengths: every entry must lie in [0, {T}], got {lengths.tolist()}")
    return (np.arange(T)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def _time_order(T, reverse):
    """The time indices in processing order."""
    return range(T - 1, -1, -1) if reverse else range(T)


# --------------------------------------------------------------------------------------
# LSTM: one step
# --------------------------------------------------------------------------------------

def _lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """One LSTM step for a batch; returns (h1, c1, cache). ``w_hr`` adds the projection."""
    H = c.shape[1]
    pre = x @ w_ih.T + _bias_or_zeros(b_ih, 4 * H, x.dtype) \
        + h @ w_hh.T + _bias_or_zeros(b_hh, 4 * H, x.dtype)
    a_i, a_f, a_g, a_o = _split(pre, 4)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c1 = f * c + i * g
    tanh_c1 = np.tanh(c1)
    m = o * tanh_c1                      # the cell output before any projection
    h1 = m if w_hr is None else m @ w_hr.T
    cache = dict(x=x, h=h, c=c, w_ih=w_ih, w_hh=w_hh, w_hr=w_hr,
                 has_b_ih=b_ih is not None, has_b_hh=b_hh is not None,
                 i=i, f=f, g=g, o=o, tanh_c1=tanh_c1, m=m)
    return h1, c1, cache


def _lstm_step_backward(cache, dh1, dc1):
    """Backward of ``_lstm_step``: gradients w.r.t. its inputs and parameters.

    Returns a dict with dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr (dw_hr is None
    without projection; db_* are None where the bias was None).
    """
    i, f, g, o, tanh_c1 = cache["i"], cache["f"], cache["g"], cache["o"], cache["tanh_c1"]
    w_hr = cache["w_hr"]
    if w_hr is None:
        dm, dw_hr = dh1, None
    else:
        dm, dw_hr = dh1 @ w_hr, dh1.T @ cache["m"]
    # c1 reaches the loss directly (dc1) and through h1 = o * tanh(c1).
    dc1_total = dc1 + dm * o * dtanh(tanh_c1)
    # Gradients w.r.t. the gate pre-activations (before sigmoid/tanh), order i, f, g, o.
    da = np.concatenate([
        dc1_total * g * dsigmoid(i),
        dc1_total * cache["c"] * dsigmoid(f),
        dc1_total * i * dtanh(g),
        dm * tanh_c1 * dsigmoid(o),
    ], axis=1)
    # The same pre-activation sum feeds both biases, so they share one gradient.
    db = da.sum(axis=0)
    return dict(
        dx=da @ cache["w_ih"],
        dh=da @ cache["w_hh"],
        dc=dc1_total * f,
        dw_ih=da.T @ cache["x"],
        dw_hh=da.T @ cache["h"],
        db_ih=db if cache["has_b_ih"] else None,
        db_hh=db.copy() if cache["has_b_hh"] else None,
        dw_hr=dw_hr,
    )


# --------------------------------------------------------------------------------------
# GRU: one step
# --------------------------------------------------------------------------------------

def _gru_step(x, h, w_ih, w_hh, b_ih, b_hh, linear_before_reset=True):
    """One GRU step for a batch; returns (h1, cache).

    linear_before_reset=True (PyTorch): n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
    linear_before_reset=False (ONNX default): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
    """
    H = h.shape[1]
    gi_r, gi_z, gi_n = _split(x @ w_ih.T + _bias_or_zeros(b_ih, 3 * H, x.dtype), 3)
    u_r, u_z, u_n = np.split(w_hh, 3, axis=0)          # recurrent weights per gate
    c_r, c_z, c_n = _split(_bias_or_zeros(b_hh, 3 * H, x.dtype), 3)
    r = sigmoid(gi_r + h @ u_r.T + c_r)
    z = sigmoid(gi_z + h @ u_z.T + c_z)
    # h_n is what the recurrent weights of the n gate multiply.
    h_n = h if linear_before_reset else r * h
    gh_n = h_n @ u_n.T + c_n
    n = np.tanh(gi_n + (r * gh_n if linear_before_reset else gh_n))
    h1 = (1.0 - z) * n + z * h
    cache = dict(x=x, h=h, w_ih=w_ih, w_hh=w_hh,
                 has_b_ih=b_ih is not None, has_b_hh=b_hh is not None,
                 linear_before_reset=linear_before_reset, r=r, z=z, n=n, h_n=h_n, gh_n=gh_n)
    return h1, cache


def _gru_step_backward(cache, dh1):
    """Backward of ``_gru_step``: dict with dx, dh, dw_ih, dw_hh, db_ih, db_hh."""
    x, h, r, z, n = cache["x"], cache["h"], cache["r"], cache["z"], cache["n"]
    u_r, u_z, u_n = np.split(cache["w_hh"], 3, axis=0)
    # h1 = (1 - z) * n + z * h
    dz_pre = dh1 * (h - n) * dsigmoid(z)
    dn_pre = dh1 * (1.0 - z) * dtanh(n)
    if cache["linear_before_reset"]:
        # n_pre = gi_n + r * gh_n,  gh_n = U_n h + c_n
        dr_pre = dn_pre * cache["gh_n"] * dsigmoid(r)
        dgh_n = dn_pre * r
        dh_via_n = dgh_n @ u_n
    else:
        # n_pre = gi_n + gh_n,  gh_n = U_n (r * h) + c_n
        dgh_n = dn_pre
        d_rh = dgh_n @ u_n
        dr_pre = d_rh * h * dsigmoid(r)
        dh_via_n = d_rh * r
    dh = dh1 * z + dh_via_n + dr_pre @ u_r + dz_pre @ u_z
    dgi = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)    # w.r.t. W_ih x + b_ih
    dgh = np.concatenate([dr_pre, dz_pre, dgh_n], axis=1)     # w.r.t. the U h + b_hh terms
    dw_hh = np.concatenate([dr_pre.T @ h, dz_pre.T @ h, dgh_n.T @ cache["h_n"]], axis=0)
    return dict(
        dx=dgi @ cache["w_ih"],
        dh=dh,
        dw_ih=dgi.T @ x,
        dw_hh=dw_hh,
        db_ih=dgi.sum(axis=0) if cache["has_b_ih"] else None,
        db_hh=dgh.sum(axis=0) if cache["has_b_hh"] else None,
    )


# --------------------------------------------------------------------------------------
# Public cells
# --------------------------------------------------------------------------------------

def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step. x (B, I), h and c (B, H). Returns (h1, c1, cache)."""
    x = np.asarray(x)
    dt = x.dtype
    w_ih = _as(w_ih, dt)
    state_shape = (x.shape[0], w_ih.shape[0] // 4)
    return _lstm_step(x, _zeros_if_none(h, state_shape, dt), _zeros_if_none(c, state_shape, dt),
                      w_ih, _as(w_hh, dt), _as(b_ih, dt), _as(b_hh, dt))


def lstm_cell_backward(cache, dh1, dc1=None):
    """Gradients of one LSTM step: dict with dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh."""
    dt, shape = cache["c"].dtype, cache["c"].shape
    g = _lstm_step_backward(cache, _zeros_if_none(dh1, shape, dt),
                            _zeros_if_none(dc1, shape, dt))
    del g["dw_hr"]
    return g


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, linear_before_reset=True):
    """One GRU step. x (B, I), h (B, H). Returns (h1, cache)."""
    x = np.asarray(x)
    dt = x.dtype
    w_ih = _as(w_ih, dt)
    h = _zeros_if_none(h, (x.shape[0], w_ih.shape[0] // 3), dt)
    return _gru_step(x, h, w_ih, _as(w_hh, dt), _as(b_ih, dt), _as(b_hh, dt),
                     linear_before_reset)


def gru_cell_backward(cache, dh1):
    """Gradients of one GRU step: dict with dx, dh, dw_ih, dw_hh, db_ih, db_hh."""
    h = cache["h"]
    return _gru_step_backward(cache, _zeros_if_none(dh1, h.shape, h.dtype))


# --------------------------------------------------------------------------------------
# Sequences
#
# Variable lengths are handled with a 0/1 mask per (step, sequence): every step computes
# the new state for the whole batch, and where the step is not valid for sequence b the
# state passes through unchanged and y is 0:
#     state_next = mask * state_new + (1 - mask) * state_prev,   y[t] = mask * h_new.
# The backward differentiates exactly these two lines.
# --------------------------------------------------------------------------------------

def _add(total, g):
    """Accumulate an optional gradient (None stays None)."""
    return None if g is None else (g if total is None else total + g)


def _zero_grads(params, dt):
    """Zero gradients shaped like the parameters (None for an absent one): the sum over no
    steps, which is what a sequence of length 0 gives."""
    return {"d" + k: None if a is None else np.zeros(a.shape, dt) for k, a in params.items()}


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None, *,
                 w_hr=None, lengths=None, reverse=False):
    """LSTM over a sequence, one layer, one direction.

    x (T, B, I). Returns (y (T, B, H_out), hn (B, H_out), cn (B, H), cache) where
    H_out = P with projection (w_hr (P, H)) and H otherwise.
    """
    x = np.asarray(x)
    dt = x.dtype
    T, B, _ = x.shape
    w_ih, w_hh, b_ih, b_hh, w_hr = (_as(a, dt) for a in (w_ih, w_hh, b_ih, b_hh, w_hr))
    H = w_ih.shape[0] // 4
    H_out = H if w_hr is None else w_hr.shape[0]
    h = _zeros_if_none(h0, (B, H_out), dt)
    c = _zeros_if_none(c0, (B, H), dt)
    mask = _step_mask(lengths, T, B, dt)
    y = np.zeros((T, B, H_out), dt)
    steps = []
    for t in _time_order(T, reverse):
        h_new, c_new, step = _lstm_step(x[t], h, c, w_ih, w_hh, b_ih, b_hh, w_hr)
        steps.append((t, step))
        m = mask[t]
        y[t] = m * h_new
        h = m * h_new + (1 - m) * h
        c = m * c_new + (1 - m) * c
    cache = dict(steps=steps, mask=mask, T=T, B=B, H=H, H_out=H_out, dtype=dt,
                 input_size=x.shape[2],
                 params=dict(w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, w_hr=w_hr))
    return y, h, c, cache


def lstm_backward(cache, dy, dhn=None, dcn=None):
    """Gradients of ``lstm_forward``.

    Returns a dict with dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr. dy at padded
    positions is ignored (y there is a constant 0).
    """
    dt, mask, T, B = cache["dtype"], cache["mask"], cache["T"], cache["B"]
    dy = _zeros_if_none(dy, (T, B, cache["H_out"]), dt)
    dh = _zeros_if_none(dhn, (B, cache["H_out"]), dt)
    dc = _zeros_if_none(dcn, (B, cache["H"]), dt)
    dx = np.zeros((T, B, cache["input_size"]), dt)
    totals = _zero_grads(cache["params"], dt)
    for t, step in reversed(cache["steps"]):
        m = mask[t]
        # h_new reaches the loss through y[t] and through the next state, both masked.
        g = _lstm_step_backward(step, m * (dy[t] + dh), m * dc)
        dx[t] = g["dx"]
        dh = g["dh"] + (1 - m) * dh
        dc = g["dc"] + (1 - m) * dc
        for k in ("dw_ih", "dw_hh", "db_ih", "db_hh", "dw_hr"):
            totals[k] = _add(totals[k], g[k])
    return dict(dx=dx, dh0=dh, dc0=dc, **totals)


def gru_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *,
                lengths=None, reverse=False, linear_before_reset=True):
    """GRU over a sequence, one layer, one direction.

    x (T, B, I). Returns (y (T, B, H), hn (B, H), cache).
    """
    x = np.asarray(x)
    dt = x.dtype
    T, B, _ = x.shape
    w_ih, w_hh, b_ih, b_hh = (_as(a, dt) for a in (w_ih, w_hh, b_ih, b_hh))
    H = w_ih.shape[0] // 3
    h = _zeros_if_none(h0, (B, H), dt)
    mask = _step_mask(lengths, T, B, dt)
    y = np.zeros((T, B, H), dt)
    steps = []
    for t in _time_order(T, reverse):
        h_new, step = _gru_step(x[t], h, w_ih, w_hh, b_ih, b_hh, linear_before_reset)
        steps.append((t, step))
        m = mask[t]
        y[t] = m * h_new
        h = m * h_new + (1 - m) * h
    cache = dict(steps=steps, mask=mask, T=T, B=B, H=H, dtype=dt, input_size=x.shape[2],
                 params=dict(w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh))
    return y, h, cache


def gru_backward(cache, dy, dhn=None):
    """Gradients of ``gru_forward``: dict with dx, dh0, dw_ih, dw_hh, db_ih, db_hh.

    dy at padded positions is ignored (y there is a constant 0).
    """
    dt, mask, T, B = cache["dtype"], cache["mask"], cache["T"], cache["B"]
    dy = _zeros_if_none(dy, (T, B, cache["H"]), dt)
    dh = _zeros_if_none(dhn, (B, cache["H"]), dt)
    dx = np.zeros((T, B, cache["input_size"]), dt)
    totals = _zero_grads(cache["params"], dt)
    for t, step in reversed(cache["steps"]):
        m = mask[t]
        g = _gru_step_backward(step, m * (dy[t] + dh))
        dx[t] = g["dx"]
        dh = g["dh"] + (1 - m) * dh
        for k in ("dw_ih", "dw_hh", "db_ih", "db_hh"):
            totals[k] = _add(totals[k], g[k])
    return dict(dx=dx, dh0=dh, **totals)
