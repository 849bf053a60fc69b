"""The CUDA backend (fusedrnn.cuda, module fusedrnn._cuda).

Two parts. The first runs everywhere: the build switch and the dispatch rules (``import
fusedrnn`` needs no CUDA library; NumPy input stays on the CPU; GPU arrays without a usable
backend are a clear error). The second needs a GPU, the backend and CuPy, and skips cleanly
without them: every kernel variant against the NumPy reference and the CPU backend, half
types, PyTorch tensors, streams, errors, odd sizes.

Tolerances: float32 is the CPU's (conftest.TOLERANCES: the GEMMs are float32 without TF32,
the gate math float32); half types are looser, see HALF_TOLERANCES.
"""

import subprocess
import sys

import numpy as np
import pytest

import fusedrnn
from conftest import (
    CUDA_VARIANT_IDS,
    CUDA_VARIANTS,
    Tolerance,
    assert_named_close,
    describe,
    kernel_backward,
    kernel_forward,
    make_problem,
    reference_backward,
    reference_forward,
    cuda_variant_problem,
    rng_for,
    set_persistent,
)

# --------------------------------------------------------------------------------------
# Part 1: everywhere
# --------------------------------------------------------------------------------------


def test_import_loads_no_cuda_library():
    """`import fusedrnn` and a NumPy call never load the CUDA module or cuBLAS."""
    code = (
        "import sys, numpy as np, fusedrnn\n"
        "x = np.zeros((2, 1, 3), np.float32); w = np.zeros((8, 3), np.float32)\n"
        "fusedrnn.lstm_forward(x, w, np.zeros((8, 2), np.float32))\n"
        "maps = open('/proc/self/maps').read() if sys.platform == 'linux' else ''\n"
        "assert 'fusedrnn._cuda' not in sys.modules, 'fusedrnn._cuda imported'\n"
        "assert 'libcublas' not in maps, 'libcublas loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_is_available_has_a_reason():
    available = fusedrnn.cuda.is_available()
    assert isinstance(available, bool)
    reason = fusedrnn.cuda.unavailable_reason()
    if available:
        assert reason is None
    else:
        assert isinstance(reason, str) and reason, "is_available() False without a reason"


def test_info_reports_the_cuda_backend():
    text = fusedrnn.info()["cuda"]
    assert text.startswith(("no (", "built, not available", "yes: ")), text
    if not fusedrnn.cuda.is_available():
        assert fusedrnn.cuda.unavailable_reason() in text


class FakeDeviceArray:
    """Claims to live on a GPU (CUDA Array Interface) without any CUDA library."""

    def __init__(self, shape, typestr="<f4"):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (0, False),
                                         "version": 3, "strides": None}


def test_device_array_detection():
    assert not fusedrnn.cuda.is_device_array(np.zeros(3, np.float32))
    assert not fusedrnn.cuda.is_device_array([1.0, 2.0])
    assert not fusedrnn.cuda.is_device_array(None)
    assert fusedrnn.cuda.is_device_array(FakeDeviceArray((3,)))


def test_torch_cpu_tensors_stay_on_the_cpu():
    torch = pytest.importorskip("torch")
    assert not fusedrnn.cuda.is_device_array(torch.zeros(3))
    x = torch.zeros(2, 1, 3)
    y, hn, cn, _ = fusedrnn.lstm_forward(x, torch.zeros(8, 3), torch.zeros(8, 2))
    assert isinstance(y, np.ndarray)


def test_numpy_input_never_reaches_the_cuda_backend(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("NumPy input dispatched to CUDA")

    for name in ("lstm_forward", "lstm_backward", "gru_forward", "gru_backward"):
        monkeypatch.setattr(fusedrnn.cuda, name, refuse)
    p = make_problem(rng_for("numpy-cpu"), "lstm", 3, 2, 4, 5, dtype=np.float32)
    out, saved = kernel_forward(p)
    kernel_backward(p, saved)
    q = make_problem(rng_for("numpy-cpu-gru"), "gru", 3, 2, 4, 5, dtype=np.float32)
    out, saved = kernel_forward(q)
    kernel_backward(q, saved)


@pytest.mark.skipif(fusedrnn.cuda.is_available(), reason="the backend is available here")
def test_gpu_arrays_without_a_backend_are_a_clear_error():
    x = FakeDeviceArray((2, 1, 3))
    with pytest.raises(RuntimeError, match="CUDA backend is unavailable"):
        fusedrnn.lstm_forward(x, np.zeros((8, 3), np.float32), np.zeros((8, 2), np.float32))
    with pytest.raises(RuntimeError, match="CUDA backend is unavailable"):
        fusedrnn.gru_forward(x, np.zeros((6, 3), np.float32), np.zeros((6, 2), np.float32))


# --------------------------------------------------------------------------------------
# Part 2: on a GPU
# --------------------------------------------------------------------------------------

HALF_TOLERANCES = {
    "float16": Tolerance(
        rtol=5e-3, atol=5e-3,
        reason="float16 storage (11-bit significand, 4.9e-4 unit roundoff) of inputs, states, "
               "saved gates and gate gradients, float32 math: every stored intermediate is "
               "rounded and carried through the recurrence and the T*B-row weight GEMMs. The "
               "host emulation (tests/test_cuda_emulated.py, T=9) measures up to 4.4e-4 of "
               "scale + |expected|; 5e-3 leaves room for T=20, a wrong term is O(1e-1)."),
    "bfloat16": Tolerance(
        rtol=4e-2, atol=4e-2,
        reason="bfloat16 storage (8-bit significand, 3.9e-3 unit roundoff), otherwise as "
               "float16: the emulation measures up to 5.0e-3 at T=9; 8x float16's bound."),
}


@pytest.fixture(scope="module")
def cp():
    cupy = pytest.importorskip("cupy")
    if not fusedrnn.cuda.is_available():
        pytest.skip(f"CUDA backend unavailable: {fusedrnn.cuda.unavailable_reason()}")
    return cupy


def to_device(cp, p):
    """The problem with every float array on the GPU (lengths stay on the host)."""
    fields = dict(p.__dict__)
    for k, v in fields.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            fields[k] = cp.asarray(v)
    return type(p)(**fields)


def to_host(d):
    out = {}
    for k, v in d.items():
        if v is None or isinstance(v, np.ndarray):
            out[k] = v
        elif hasattr(v, "get"):
            out[k] = v.get()
        else:  # torch
            out[k] = v.detach().float().cpu().numpy() if str(v.dtype) == "torch.bfloat16" \
                else v.detach().cpu().numpy()
    return out


def gpu_run(cp, p):
    """Forward and backward of the problem on the GPU: (outputs, grads) as NumPy dicts."""
    g = to_device(cp, p)
    out, saved = kernel_forward(g, training=True)
    grads = kernel_backward(g, saved)
    for v in list(out.values()) + [v for v in grads.values() if v is not None]:
        assert isinstance(v, cp.ndarray), type(v)
    return to_host(out), to_host(grads)


VARIANTS, VARIANT_IDS = CUDA_VARIANTS, CUDA_VARIANT_IDS
SHAPES = [(1, 1, 1, 4), (7, 3, 5, 4), (13, 5, 11, 16), (50, 8, 16, 32), (20, 64, 33, 17)]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("lengths", [None, "random"], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("optional", [True, False], ids=["all-args", "no-optional"])
@pytest.mark.parametrize("persistent", [None, "0"], ids=["default", "per-step"])
def test_float32_matches_reference_and_cpu(cp, monkeypatch, variant, shape, lengths, reverse,
                                           optional, persistent):
    set_persistent(monkeypatch, persistent)
    p = cuda_variant_problem((), variant, shape, lengths, reverse, optional)
    out, grads = gpu_run(cp, p)
    ref_out, cache = reference_forward(p)
    assert_named_close(out, ref_out, np.float32, context=f"{describe(p)} forward vs reference")
    assert_named_close(grads, reference_backward(p, cache), np.float32,
                       context=f"{describe(p)} backward vs reference")
    cpu_out, saved = kernel_forward(p)
    assert_named_close(out, cpu_out, np.float32, context=f"{describe(p)} forward vs CPU")
    assert_named_close(grads, kernel_backward(p, saved), np.float32,
                       context=f"{describe(p)} backward vs CPU")


@pytest.mark.parametrize("variant", [("lstm", 0, True), ("gru", 0, True)], ids=["lstm", "gru"])
# 10x32x8x300: one thread a dot product in the forward (split_dots' split 1 on 132 SMs).
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (13, 5, 11, 16), (40, 16, 32, 256),
                                   (20, 16, 16, 1000), (10, 32, 8, 300)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("lengths", [None, "random"], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_persistent_forward(cp, monkeypatch, variant, shape, lengths, reverse):
    """The persistent kernels (FUSEDRNN_CUDA_PERSISTENT=1), forward and backward, run and
    match the reference."""
    monkeypatch.setenv("FUSEDRNN_CUDA_PERSISTENT", "1")
    module = fusedrnn.cuda._load()[0]
    kind, P, lbr = variant
    T, B, I, H = shape
    p = make_problem(rng_for("persist", variant, shape, lengths, reverse), kind, T, B, I, H,
                     dtype=np.float32, lengths=lengths, reverse=reverse, linear_before_reset=lbr)
    before = module.persistent_launch_count()
    out, grads = gpu_run(cp, p)
    assert module.persistent_launch_count() == before + 2, "the persistent kernels did not run"
    ref_out, cache = reference_forward(p)
    assert_named_close(out, ref_out, np.float32, context=f"{describe(p)} forward")
    assert_named_close(grads, reference_backward(p, cache), np.float32,
                       context=f"{describe(p)} backward")


def assert_close_at(actual, expected, tol, context):
    for name, e in expected.items():
        a = actual[name]
        assert (a is None) == (e is None), f"{context} {name}"
        if e is None or e.size == 0:
            continue
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        scale = max(1.0, float(np.abs(e).max()))
        err = np.abs(a - e) - (tol.atol * scale + tol.rtol * np.abs(e))
        assert (err <= 0).all(), (f"{context} {name}: max excess {err.max():.3g} over "
                                  f"rtol={tol.rtol}, atol={tol.atol} ({tol.reason})")


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("lengths", [None, "random"], ids=["full", "lengths"])
def test_float16_matches_reference(cp, variant, lengths):
    kind, P, lbr = variant
    p32 = make_problem(rng_for("f16", variant, lengths), kind, 20, 6, 9, 16, P=P, dtype=np.float32,
                       lengths=lengths, linear_before_reset=lbr)
    p16 = p32.cast(np.float16)
    out, grads = gpu_run(cp, p16)
    ref_out, cache = reference_forward(p16)  # the reference on the same (rounded) inputs
    tol = HALF_TOLERANCES["float16"]
    assert_close_at(out, ref_out, tol, f"{describe(p16)} forward")
    assert_close_at(grads, reference_backward(p16, cache), tol, f"{describe(p16)} backward")


@pytest.fixture(scope="module")
def torch_cuda(cp):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    return torch


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_torch_tensors_in_torch_tensors_out(torch_cuda, variant, dtype):
    torch = torch_cuda
    kind, P, lbr = variant
    p = make_problem(rng_for("torch", variant, dtype), kind, 12, 4, 6, 8, P=P, dtype=np.float32,
                     lengths="random", reverse=True, linear_before_reset=lbr)
    tdtype = getattr(torch, dtype)
    fields = dict(p.__dict__)
    for k, v in fields.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            fields[k] = torch.from_numpy(v).to("cuda", tdtype)
    g = type(p)(**fields)
    out, saved = kernel_forward(g, training=True)
    grads = kernel_backward(g, saved)
    for v in list(out.values()) + [v for v in grads.values() if v is not None]:
        assert isinstance(v, torch.Tensor) and v.is_cuda and v.dtype == tdtype
    if dtype == "float32":
        ref_out, cache = reference_forward(p)
        assert_named_close(to_host(out), ref_out, np.float32, context=describe(p))
        assert_named_close(to_host(grads), reference_backward(p, cache), np.float32,
                           context=describe(p))
        return
    q = p.cast(np.float32)  # the reference on the bfloat16-rounded inputs
    for k, v in fields.items():
        if isinstance(v, torch.Tensor):
            setattr(q, k, v.float().cpu().numpy())
    ref_out, cache = reference_forward(q)
    tol = HALF_TOLERANCES["bfloat16"]
    assert_close_at(to_host(out), ref_out, tol, describe(q))
    assert_close_at(to_host(grads), reference_backward(q, cache), tol, describe(q))


class OnlyInterface:
    """A GPU array known only by its __cuda_array_interface__ (as Numba's, say)."""

    def __init__(self, a):
        self.__cuda_array_interface__ = a.__cuda_array_interface__


def test_foreign_cuda_arrays_come_back_as_cupy(cp):
    p = make_problem(rng_for("foreign"), "gru", 5, 3, 4, 6, dtype=np.float32)
    g = to_device(cp, p)
    y, hn, _ = fusedrnn.gru_forward(OnlyInterface(g.x), OnlyInterface(g.w_ih), g.w_hh)
    assert isinstance(y, cp.ndarray)
    y_ref, _, _ = fusedrnn.gru_forward(g.x, g.w_ih, g.w_hh)
    np.testing.assert_array_equal(y.get(), y_ref.get())


def test_runs_on_the_current_stream(cp):
    p = make_problem(rng_for("stream"), "lstm", 30, 16, 32, 64, dtype=np.float32)
    expected, _ = gpu_run(cp, p)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        out, grads = gpu_run(cp, p)
    stream.synchronize()
    for k in expected:
        np.testing.assert_array_equal(out[k], expected[k])


def test_results_are_deterministic(cp):
    p = make_problem(rng_for("det"), "gru", 25, 9, 13, 24, dtype=np.float32, lengths="random",
                     reverse=True)
    a, ga = gpu_run(cp, p)
    b, gb = gpu_run(cp, p)
    for d1, d2 in ((a, b), (ga, gb)):
        for k in d1:
            if d1[k] is not None:
                assert d1[k].tobytes() == d2[k].tobytes(), k


def test_non_contiguous_inputs(cp):
    p = make_problem(rng_for("layout"), "lstm", 6, 4, 5, 7, dtype=np.float32)
    g = to_device(cp, p)
    x_t = cp.ascontiguousarray(g.x.transpose(1, 0, 2)).transpose(1, 0, 2)  # (T, B, I) view
    w_f = cp.asfortranarray(g.w_ih)
    y, hn, cn, _ = fusedrnn.lstm_forward(x_t, w_f, g.w_hh, g.b_ih, g.b_hh, g.h0, g.c0)
    ref_out, _ = reference_forward(p)
    assert_named_close(to_host(dict(y=y, hn=hn, cn=cn)), ref_out, np.float32)


@pytest.mark.parametrize("T,B,I,H", [(0, 3, 4, 5), (4, 0, 4, 5), (4, 3, 0, 5)])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_empty_sizes(cp, kind, T, B, I, H):
    p = make_problem(rng_for("empty", kind, T, B, I, H), kind, T, B, I, H, dtype=np.float32)
    out, grads = gpu_run(cp, p)
    ref_out, cache = reference_forward(p)
    assert_named_close(out, ref_out, np.float32)
    assert_named_close(grads, reference_backward(p, cache), np.float32)


def test_cells(cp):
    rng = rng_for("cells")
    B, I, H = 3, 4, 5
    x, h, c = (cp.asarray(rng.standard_normal(s).astype(np.float32))
               for s in [(B, I), (B, H), (B, H)])
    w_ih, w_hh = (cp.asarray(rng.uniform(-0.3, 0.3, s).astype(np.float32))
                  for s in [(4 * H, I), (4 * H, H)])
    h1, c1, saved = fusedrnn.lstm_cell(x, h, c, w_ih, w_hh, training=True)
    g = fusedrnn.lstm_cell_backward(saved, cp.ones_like(h1))
    h1_cpu, c1_cpu, saved_cpu = fusedrnn.lstm_cell(x.get(), h.get(), c.get(), w_ih.get(),
                                                   w_hh.get(), training=True)
    g_cpu = fusedrnn.lstm_cell_backward(saved_cpu, np.ones_like(h1_cpu))
    assert_named_close(to_host(dict(h1=h1, c1=c1, **g._asdict())),
                       dict(h1=h1_cpu, c1=c1_cpu, **g_cpu._asdict()), np.float32)
    h1 = fusedrnn.gru_cell(x, h, w_ih[: 3 * H], w_hh[: 3 * H])
    assert isinstance(h1, cp.ndarray) and h1.shape == (B, H)


def test_errors_name_the_argument(cp):
    p = make_problem(rng_for("errors"), "lstm", 3, 2, 4, 5, dtype=np.float32)
    g = to_device(cp, p)
    with pytest.raises(TypeError, match="^w_ih: expected a CUDA array"):
        fusedrnn.lstm_forward(g.x, p.w_ih, g.w_hh)
    with pytest.raises(TypeError, match="^x: expected a CUDA array"):
        fusedrnn.lstm_forward(p.x, g.w_ih, g.w_hh)
    with pytest.raises(TypeError, match=r"^w_hh: expected dtype float32 \(the dtype of x\)"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh.astype(cp.float16))
    with pytest.raises(TypeError, match="^x: expected dtype float32, float16 or bfloat16"):
        fusedrnn.lstm_forward(g.x.astype(cp.float64), g.w_ih, g.w_hh)
    with pytest.raises(ValueError, match=r"^w_ih: expected shape \(4\*H=20, I=4\), got \(20, 3\)"):
        fusedrnn.lstm_forward(g.x, g.w_ih[:, :3], g.w_hh)
    with pytest.raises(ValueError, match=r"^lengths: expected values in \[0, T=3\]"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, lengths=[1, 4])
    y, _, _, saved = fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, training=True)
    with pytest.raises(TypeError, match="^dy: expected a CUDA array"):
        fusedrnn.lstm_backward(saved, p.dy)
    with pytest.raises(ValueError, match=r"^out\[1\] \(hn\): expected shape"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, out=(y, y, y))
    out = (cp.empty_like(y), cp.empty((2, 5), cp.float32), cp.empty((2, 5), cp.float32))
    got = fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, out=out)
    assert all(a is b for a, b in zip(got[:3], out))
    np.testing.assert_array_equal(got[0].get(), y.get())


def test_info_names_the_device(cp):
    assert fusedrnn.info()["cuda"].startswith("yes: cuda:0 ")

