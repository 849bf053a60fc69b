"""Shared helpers for the kernel tests: tolerances, random problems, running kernel and
reference side by side, and comparing named sets of arrays.

Test modules import the helpers with ``from conftest import ...`` (pytest puts this
directory on sys.path); the fixtures below are found by pytest itself.
"""

import zlib
from dataclasses import dataclass

import numpy as np
import pytest

import fusedrnn
from fusedrnn import reference as ref

# --------------------------------------------------------------------------------------
# Tolerances, one per dtype, each with its reason.
#
# A check passes when |actual - expected| <= atol * scale + rtol * |expected| elementwise,
# where scale = max(1, max |expected|) of that array: rounding errors of a sum are relative
# to the size of its terms, not of the (possibly cancelling) result, so an entry that is a
# near-zero sum of O(scale) terms may carry an absolute error of O(eps * scale).
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    reason: str


TOLERANCES = {
    np.dtype(np.float64): Tolerance(
        rtol=1e-10, atol=1e-10,
        reason="float64 on both sides: the same math in a different summation order (one "
               "large GEMM vs. per-step products), so differences are a few ulps (~1e-16) "
               "times T*B accumulated terms; 1e-10 leaves a wide margin yet catches any "
               "wrong term, which shows up at O(1e-2)."),
    np.dtype(np.float32): Tolerance(
        rtol=1e-4, atol=1e-4,
        reason="float32 kernel against the float64 reference on the same (float32) inputs: "
               "~7 significant digits per operation, with rounding carried through the "
               "recurrence and summed over T*B rows in the weight gradients, so errors grow "
               "with T; ~1e-4 relative covers T ~ 50 while a wrong term is O(1e-2)."),
}


def tolerance(dtype):
    return TOLERANCES[np.dtype(dtype)]


DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]

# --------------------------------------------------------------------------------------
# Comparing named sets of arrays
# --------------------------------------------------------------------------------------


def _as_dict(obj):
    if hasattr(obj, "_asdict"):  # the kernels' named tuples
        return dict(obj._asdict())
    return dict(obj)


def assert_named_close(actual, expected, dtype, context=""):
    """Compare two name -> array (or None) mappings at the tolerance of ``dtype``.

    Both must have the same names, None in the same places, the same shapes; ``actual``'s
    arrays must have ``dtype``. Every mismatch is collected, so one failure message lists all
    the names that disagree with their largest absolute and relative errors.
    """
    actual, expected = _as_dict(actual), _as_dict(expected)
    dtype = np.dtype(dtype)
    tol = tolerance(dtype)
    problems = []
    if set(actual) != set(expected):
        problems.append(f"names differ: actual {sorted(actual)}, expected {sorted(expected)}")
    for name in [n for n in expected if n in actual]:
        a, e = actual[name], expected[name]
        if a is None or e is None:
            if (a is None) != (e is None):
                problems.append(f"{name}: actual is {'None' if a is None else 'an array'}, "
                                f"expected {'None' if e is None else 'an array'}")
            continue
        a, e = np.asarray(a), np.asarray(e)
        if a.shape != e.shape:
            problems.append(f"{name}: shape {a.shape}, expected {e.shape}")
            continue
        if a.dtype != dtype:
            problems.append(f"{name}: dtype {a.dtype}, expected {dtype}")
            continue
        if a.size == 0:
            continue
        e64 = e.astype(np.float64)
        diff = np.abs(a.astype(np.float64) - e64)
        finite = np.abs(e64[np.isfinite(e64)])
        scale = max(1.0, float(finite.max()) if finite.size else 1.0)
        bound = tol.atol * scale + tol.rtol * np.abs(e64)
        same_nan = np.isnan(a) == np.isnan(e64)
        with np.errstate(invalid="ignore"):  # inf - inf: equal infinities pass via a == e
            bad = ~same_nan | ((diff > bound) & (a != e64))
        if bad.any():
            worst = np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0)
            idx = np.unravel_index(int(np.argmax(worst)), a.shape)
            rel = diff / np.maximum(np.abs(e64), np.finfo(np.float64).tiny)
            problems.append(
                f"{name}: {int(bad.sum())}/{a.size} entries off; max abs err "
                f"{np.nanmax(diff):.3g}, max rel err {np.nanmax(rel):.3g}; worst at {idx}: "
                f"{a[idx]!r} vs {e[idx]!r}")
    if problems:
        head = f"{context}: " if context else ""
        raise AssertionError(
            head + f"{len(problems)} mismatch(es) at {dtype} (rtol={tol.rtol}, "
            f"atol={tol.atol}*scale)\n  " + "\n  ".join(problems))


def assert_named_equal(actual, expected, context=""):
    """Bitwise equality of two name -> array (or None) mappings (NaNs equal to NaNs)."""
    actual, expected = _as_dict(actual), _as_dict(expected)
    assert set(actual) == set(expected), f"{context}: {sorted(actual)} vs {sorted(expected)}"
    bad = []
    for name, e in expected.items():
        a = actual[name]
        if a is None or e is None:
            if (a is None) != (e is None):
                bad.append(f"{name}: one is None")
            continue
        a, e = np.asarray(a), np.asarray(e)
        if a.shape != e.shape or a.dtype != e.dtype:
            bad.append(f"{name}: {a.dtype}{a.shape} vs {e.dtype}{e.shape}")
        elif a.tobytes() != e.tobytes():
            # Compare the bits, so that -0.0 vs 0.0 and NaN payloads count as well.
            bad.append(f"{name}: differs, max abs diff {np.nanmax(np.abs(a - e)):.3g}")
    assert not bad, f"{context}: not bitwise identical\n  " + "\n  ".join(bad)


# --------------------------------------------------------------------------------------
# Random problems
# --------------------------------------------------------------------------------------


def rng_for(*key):
    """A generator seeded from a test's parameters: every case reproducible on its own."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


@dataclass
class Problem:
    """One layer, one direction: inputs, options and upstream gradients.

    kind is "lstm" or "gru"; P > 0 is an LSTM projection (w_hr (P, H)). Arrays that are
    None are left out of the call (absent bias, zero initial state, zero upstream gradient).
    """

    kind: str
    T: int
    B: int
    I: int
    H: int
    P: int
    dtype: np.dtype
    x: np.ndarray
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: object
    b_hh: object
    h0: object
    c0: object
    w_hr: object
    lengths: object
    reverse: bool
    linear_before_reset: bool
    dy: np.ndarray
    dhn: object
    dcn: object

    @property
    def H_out(self):
        return self.P or self.H

    def cast(self, dtype):
        """The same problem with every float array cast to ``dtype``."""
        fields = dict(self.__dict__)
        for k, v in fields.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                fields[k] = v.astype(dtype)
        fields["dtype"] = np.dtype(dtype)
        return Problem(**fields)


def make_problem(rng, kind, T, B, I, H, *, P=0, dtype=np.float64, b_ih=True, b_hh=True,
                 h0=True, c0=True, dhn=True, dcn=True, lengths=None, reverse=False,
                 linear_before_reset=True):
    """Random inputs like a freshly initialised PyTorch layer: weights and biases uniform in
    +-1/sqrt(H); x standard normal; states and upstream gradients uniform in +-1.

    ``lengths``: None, an explicit sequence, or "random" (uniform in [0, T], with 0 and T
    forced in when B allows, so both edge cases are always exercised).
    """
    assert kind in ("lstm", "gru")
    assert P == 0 or kind == "lstm"
    G = 4 if kind == "lstm" else 3
    H_out = P or H
    k = 1.0 / np.sqrt(H) if H else 1.0
    dtype = np.dtype(dtype)

    def uni(shape, bound):
        return rng.uniform(-bound, bound, shape).astype(dtype)

    if isinstance(lengths, str):
        assert lengths == "random"
        lengths = rng.integers(0, T + 1, B)
        if B >= 2:
            lengths[rng.permutation(B)[:2]] = [0, T]
    if lengths is not None:
        lengths = np.asarray(lengths, dtype=np.int64)
    return Problem(
        kind=kind, T=T, B=B, I=I, H=H, P=P, dtype=dtype,
        x=rng.standard_normal((T, B, I)).astype(dtype),
        w_ih=uni((G * H, I), k),
        w_hh=uni((G * H, H_out), k),
        b_ih=uni((G * H,), k) if b_ih else None,
        b_hh=uni((G * H,), k) if b_hh else None,
        h0=uni((B, H_out), 1.0) if h0 else None,
        c0=uni((B, H), 1.0) if (c0 and kind == "lstm") else None,
        w_hr=uni((P, H), k) if P else None,
        lengths=lengths, reverse=reverse,
        linear_before_reset=linear_before_reset,
        dy=uni((T, B, H_out), 1.0),
        dhn=uni((B, H_out), 1.0) if dhn else None,
        dcn=uni((B, H), 1.0) if (dcn and kind == "lstm") else None,
    )


# --------------------------------------------------------------------------------------
# Running kernel and reference on a Problem
# --------------------------------------------------------------------------------------


def kernel_forward(p, training=True, packed=None, **override):
    """fusedrnn's forward on ``p``; returns (outputs dict, saved). ``override`` replaces
    any argument (used to pass re-laid-out copies of the inputs); ``packed``: the forward's
    ``packed`` argument (pack_weights)."""
    a = dict(x=p.x, w_ih=p.w_ih, w_hh=p.w_hh, b_ih=p.b_ih, b_hh=p.b_hh, h0=p.h0,
             lengths=p.lengths)
    if p.kind == "lstm":
        a.update(c0=p.c0, w_hr=p.w_hr)
        a.update(override)
        y, hn, cn, saved = fusedrnn.lstm_forward(
            a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], a["h0"], a["c0"],
            w_hr=a["w_hr"], lengths=a["lengths"], reverse=p.reverse, training=training,
            packed=packed)
        return dict(y=y, hn=hn, cn=cn), saved
    a.update(override)
    y, hn, saved = fusedrnn.gru_forward(
        a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], a["h0"], lengths=a["lengths"],
        reverse=p.reverse, linear_before_reset=p.linear_before_reset, training=training,
        packed=packed)
    return dict(y=y, hn=hn), saved


def kernel_backward(p, saved, **override):
    """fusedrnn's backward from ``saved`` with p's upstream gradients: a name -> array dict."""
    a = dict(dy=p.dy, dhn=p.dhn, dcn=p.dcn)
    a.update(override)
    if p.kind == "lstm":
        return _as_dict(fusedrnn.lstm_backward(saved, a["dy"], a["dhn"], a["dcn"]))
    return _as_dict(fusedrnn.gru_backward(saved, a["dy"], a["dhn"]))


def reference_forward(p):
    """The NumPy reference on ``p``, always in float64 (a float32 problem is cast up, so the
    comparison measures the kernel's rounding, not the reference's)."""
    q = p.cast(np.float64)
    if q.kind == "lstm":
        y, hn, cn, cache = ref.lstm_forward(
            q.x, q.w_ih, q.w_hh, q.b_ih, q.b_hh, q.h0, q.c0, w_hr=q.w_hr,
            lengths=q.lengths, reverse=q.reverse)
        return dict(y=y, hn=hn, cn=cn), cache
    y, hn, cache = ref.gru_forward(
        q.x, q.w_ih, q.w_hh, q.b_ih, q.b_hh, q.h0, lengths=q.lengths, reverse=q.reverse,
        linear_before_reset=q.linear_before_reset)
    return dict(y=y, hn=hn), cache


def reference_backward(p, cache):
    q = p.cast(np.float64)
    if q.kind == "lstm":
        return dict(ref.lstm_backward(cache, q.dy, q.dhn, q.dcn))
    return dict(ref.gru_backward(cache, q.dy, q.dhn))


def check_against_reference(p, context=""):
    """Forward outputs and every gradient of the kernel on ``p`` against the reference."""
    out, saved = kernel_forward(p, training=True)
    ref_out, cache = reference_forward(p)
    assert_named_close(out, ref_out, p.dtype, context=f"{context} forward")
    grads = kernel_backward(p, saved)
    assert_named_close(grads, reference_backward(p, cache), p.dtype,
                       context=f"{context} backward")


def describe(p):
    """A one-line description of a problem for failure messages."""
    return (f"{p.kind} T={p.T} B={p.B} I={p.I} H={p.H} P={p.P} {p.dtype} "
            f"reverse={p.reverse} lbr={p.linear_before_reset} lengths="
            f"{None if p.lengths is None else p.lengths.tolist()} biases="
            f"{p.b_ih is not None}/{p.b_hh is not None} h0={p.h0 is not None} "
            f"c0={p.c0 is not None} dhn={p.dhn is not None} dcn={p.dcn is not None}")


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture
def restore_threads():
    """Put the kernels' thread count back after a test that changes it."""
    n = fusedrnn.get_num_threads()
    yield n
    fusedrnn.set_num_threads(n)


# The GPU backend's variants (kind, projection size, linear_before_reset) for tests/test_cuda.py
# and its host emulation, tests/test_cuda_emulated.py.
CUDA_VARIANTS = [("lstm", 0, True), ("lstm", 3, True), ("gru", 0, True), ("gru", 0, False)]
CUDA_VARIANT_IDS = ["lstm", "lstm_proj", "gru", "gru_nolbr"]


def cuda_variant_problem(key, variant, shape, lengths, reverse, optional):
    """A float32 problem of a CUDA_VARIANTS entry at shape (T, B, I, H), seeded by the tuple key
    and the rest; optional: whether the biases, initial states and final-state gradients are
    given."""
    kind, P, lbr = variant
    T, B, I, H = shape
    flags = dict(b_ih=optional, b_hh=optional, h0=optional, c0=optional, dhn=optional,
                 dcn=optional)
    return make_problem(rng_for(*key, variant, shape, lengths, reverse, optional), kind, T, B,
                        I, H, P=min(P, H - 1), dtype=np.float32, lengths=lengths, reverse=reverse,
                        linear_before_reset=lbr, **flags)


def set_persistent(monkeypatch, value):
    """FUSEDRNN_CUDA_PERSISTENT for one CUDA test: None (unset) takes the default paths, "0"
    the per-step path only, "1" the persistent kernels wherever they fit."""
    if value is None:
        monkeypatch.delenv("FUSEDRNN_CUDA_PERSISTENT", raising=False)
    else:
        monkeypatch.setenv("FUSEDRNN_CUDA_PERSISTENT", value)
