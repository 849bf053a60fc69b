"""The CUDA backend's code run on the host, where there is no GPU: csrc/cuda compiled as C++
against tests/cuda_emulation's stand-in CUDA headers (kernels run as plain loops, cublasGemmEx
as a checked triple loop), driven through fusedrnn.cuda and the functional API with NumPy
arrays posing as device arrays. It checks the drivers (GEMM shapes and leading dimensions,
step order, lengths, reverse, the saved layout, workspace sizes), the pointwise kernels'
arithmetic and the Python layer against the reference; what only a GPU shows (launch shapes,
races, device memory, cuBLAS's own numerics) is left to tests/test_cuda.py.

The module is built once per session into build/cuda-emulation-* (about 30 s on 2 cores; then
incremental); the tests skip without CMake or pybind11 (a test extra).
"""

import fcntl
import hashlib
import importlib.util
import os
import shutil
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def emulated_module():
    if shutil.which("cmake") is None:
        pytest.skip("cmake not found")
    pybind11 = pytest.importorskip("pybind11")
    # One build per interpreter: a CMake cache remembers the Python it was configured for.
    key = hashlib.sha1(sys.executable.encode()).hexdigest()[:8]
    build = os.path.join(ROOT, "build", f"cuda-emulation-{key}")
    # CMake and the compiler run without the sanitizer runtimes .ci/sanitize preloads.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    os.makedirs(build, exist_ok=True)
    # One builder at a time (pytest-xdist runs this fixture once per worker): a second build
    # into the same folder truncated the module under the first ("file too short").
    with open(build + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["cmake", "-S", os.path.join(ROOT, "tests", "cuda_emulation"), "-B",
                        build, f"-DPython_EXECUTABLE={sys.executable}",
                        f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"],
                       check=True, capture_output=True, env=env)
        subprocess.run(["cmake", "--build", build, "--parallel", "2"], check=True,
                       capture_output=True, env=env)
    path = next(os.path.join(build, f) for f in os.listdir(build)
                if f.startswith("_cuda_emulated") and f.endswith((".so", ".pyd")))
    spec = importlib.util.spec_from_file_location("_cuda_emulated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.path = path
    return module


class Emulated(np.ndarray):
    """A NumPy array that fusedrnn.cuda takes for a device array (host memory is the emulated
    device's)."""


class EmulatedLibrary:
    """fusedrnn.cuda's array-library interface (see _CuPy, _Torch) over Emulated arrays."""

    name = "Emulated"

    @staticmethod
    def device(a):
        return 0

    @staticmethod
    def dtype(a):
        return str(a.dtype)

    @staticmethod
    def ptr(a):
        return a.ctypes.data

    @staticmethod
    def shape(a):
        return tuple(a.shape)

    @staticmethod
    def contiguous(a):
        return np.ascontiguousarray(a).view(Emulated)

    @staticmethod
    def is_c_contiguous(a):
        return a.flags.c_contiguous

    @staticmethod
    def nbytes(a):
        return a.nbytes

    @staticmethod
    def empty(shape, dtype, device):
        # NaN-filled, not merely uninitialised: an output the kernels forget to write shows.
        out = np.empty(shape, dtype)
        if out.dtype.kind == "f":
            out.fill(np.nan)
        return out.view(Emulated)

    @staticmethod
    def from_host(values, device):
        return np.array(values).view(Emulated)

    @staticmethod
    def to_host(a):
        return np.asarray(a)

    @staticmethod
    def stream(device):
        return 0


@pytest.fixture
def emulated(emulated_module, monkeypatch):
    """fusedrnn.cuda with the emulated module as its backend and Emulated as its arrays."""
    cuda = fusedrnn.cuda
    monkeypatch.setattr(cuda, "_load", lambda: (emulated_module, None))
    monkeypatch.setattr(cuda, "is_device_array", lambda a: isinstance(a, Emulated))
    monkeypatch.setattr(cuda, "_as_device",
                        lambda a: (EmulatedLibrary, a) if isinstance(a, Emulated) else (None, a))
    return emulated_module


def on_device(p):
    fields = dict(p.__dict__)
    for k, v in fields.items():
        if isinstance(v, np.ndarray) and k != "lengths":  # (ml_dtypes' bfloat16 is not kind "f")
            fields[k] = v.view(Emulated)
    return type(p)(**fields)


def run(p):
    g = on_device(p)
    out, saved = kernel_forward(g, training=True)
    grads = kernel_backward(g, saved)
    for v in list(out.values()) + [v for v in grads.values() if v is not None]:
        assert isinstance(v, Emulated)
    host = lambda d: {k: None if v is None else np.asarray(v) for k, v in d.items()}  # noqa: E731
    return host(out), host(grads)


VARIANTS, VARIANT_IDS = CUDA_VARIANTS, CUDA_VARIANT_IDS
SHAPES = [(1, 1, 1, 4), (7, 3, 5, 4), (11, 5, 2, 7)]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("lengths", [None, "random"], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("optional", [True, False], ids=["all-args", "no-optional"])
@pytest.mark.parametrize("persistent", [None, "0"], ids=["default", "per-step"])
def test_float32_matches_reference(emulated, monkeypatch, variant, shape, lengths, reverse,
                                   optional, persistent):
    set_persistent(monkeypatch, persistent)
    p = cuda_variant_problem(("emu",), variant, shape, lengths, reverse, optional)
    out, grads = run(p)
    ref_out, cache = reference_forward(p)
    assert_named_close(out, ref_out, np.float32, context=f"{describe(p)} forward")
    assert_named_close(grads, reference_backward(p, cache), np.float32,
                       context=f"{describe(p)} backward")


@pytest.mark.parametrize("variant", [("lstm", 0, True), ("gru", 0, True)], ids=["lstm", "gru"])
# 4x32x3x24: one thread a dot product in the forward (split_dots' split 1), two in the backward.
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (6, 3, 5, 4), (9, 5, 2, 7), (5, 2, 3, 11),
                                   (4, 32, 3, 24)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("lengths", [None, "random"], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_persistent_forward(emulated, monkeypatch, variant, shape, lengths, reverse, training):
    """The persistent kernels (FUSEDRNN_CUDA_PERSISTENT=1), forward and backward, emulated
    with 3 "multiprocessors": units split over blocks, the last block partial."""
    monkeypatch.setenv("FUSEDRNN_CUDA_PERSISTENT", "1")
    kind, P, lbr = variant
    T, B, I, H = shape
    p = make_problem(rng_for("emu-persist", variant, shape, lengths, reverse), kind, T, B, I, H,
                     dtype=np.float32, lengths=lengths, reverse=reverse, linear_before_reset=lbr)
    before = emulated.persistent_launch_count()
    out, saved = kernel_forward(on_device(p), training=training)
    assert emulated.persistent_launch_count() == before + 1
    ref_out, cache = reference_forward(p)
    out = {k: np.asarray(v) for k, v in out.items()}
    assert_named_close(out, ref_out, np.float32, context=f"{describe(p)} forward")
    if training:
        grads = {k: None if v is None else np.asarray(v)
                 for k, v in kernel_backward(on_device(p), saved).items()}
        assert emulated.persistent_launch_count() == before + 2  # the backward's
        assert_named_close(grads, reference_backward(p, cache), np.float32,
                           context=f"{describe(p)} backward")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_persistent_kernels_run_where_they_were_measured_faster(emulated, monkeypatch, kind):
    """Unset, FUSEDRNN_CUDA_PERSISTENT runs the persistent forward at B <= 32, H <= 256 and at
    B = 1, H <= 512, and never the persistent backward (persistent_by_default); =1 runs both
    wherever they fit, up to B = 32; =0 neither."""
    def launches(B, H, env):
        set_persistent(monkeypatch, env)
        p = make_problem(rng_for("emu-persist-auto", kind, B, H), kind, 2, B, 3, H,
                         dtype=np.float32)
        before = emulated.persistent_launch_count()
        _, saved = kernel_forward(on_device(p), training=True)
        forward = emulated.persistent_launch_count() - before
        kernel_backward(on_device(p), saved)
        return forward, emulated.persistent_launch_count() - before - forward

    assert launches(1, 128, None) == (1, 0)
    assert launches(1, 512, None) == (1, 0)
    assert launches(1, 513, None) == (0, 0)
    assert launches(2, 5, None) == (1, 0)
    assert launches(32, 256, None) == (1, 0)
    assert launches(32, 257, None) == (0, 0)
    assert launches(33, 5, None) == (0, 0)
    assert launches(1, 5, "0") == (0, 0)
    assert launches(2, 300, "1") == (1, 1)
    assert launches(32, 5, "1") == (1, 1)
    assert launches(33, 5, "1") == (0, 0)


HALF = {  # tests/test_cuda.py's HALF_TOLERANCES, with their reasons
    "float16": Tolerance(rtol=5e-3, atol=5e-3, reason="see tests/test_cuda.py"),
    "bfloat16": Tolerance(rtol=4e-2, atol=4e-2, reason="see tests/test_cuda.py"),
}


def half_dtype(name):
    if name == "float16":
        return np.dtype(np.float16)
    return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_storage(emulated, variant, dtype):
    kind, P, lbr = variant
    dt, tol = half_dtype(dtype), HALF[dtype]
    p = make_problem(rng_for("emu16", variant), kind, 9, 4, 5, 6, P=P, dtype=np.float32,
                     lengths="random", reverse=True, linear_before_reset=lbr).cast(dt)
    out, grads = run(p)
    ref_out, cache = reference_forward(p)  # on the same rounded inputs, in float64
    expected = {**ref_out, **reference_backward(p, cache)}
    for name, a in {**out, **grads}.items():
        e = expected[name]
        assert (a is None) == (e is None), name
        if a is None or a.size == 0:
            continue
        assert a.dtype == dt, name
        a = a.astype(np.float64)
        scale = max(1.0, float(np.abs(e).max()))
        excess = np.abs(a - e) - (tol.atol * scale + tol.rtol * np.abs(e))
        assert (excess <= 0).all(), f"{describe(p)} {name}: max excess {excess.max():.3g}"


@pytest.mark.parametrize("T,B,I,H", [(0, 3, 4, 5), (4, 0, 4, 5), (4, 3, 0, 5)])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_empty_sizes(emulated, kind, T, B, I, H):
    p = make_problem(rng_for("emu-empty", kind, T, B, I, H), kind, T, B, I, H, dtype=np.float32)
    out, grads = run(p)
    ref_out, cache = reference_forward(p)
    assert_named_close(out, ref_out, np.float32)
    assert_named_close(grads, reference_backward(p, cache), np.float32)


def test_cells(emulated):
    rng = rng_for("emu-cells")
    B, I, H = 3, 4, 5
    x, h, c = (rng.standard_normal(s).astype(np.float32) for s in [(B, I), (B, H), (B, H)])
    w_ih, w_hh = (rng.uniform(-0.3, 0.3, s).astype(np.float32) for s in [(4 * H, I), (4 * H, H)])
    dev = [a.view(Emulated) for a in (x, h, c, w_ih, w_hh)]
    h1, c1, saved = fusedrnn.lstm_cell(*dev, training=True)
    g = fusedrnn.lstm_cell_backward(saved, np.ones((B, H), np.float32).view(Emulated))
    h1_cpu, c1_cpu, saved_cpu = fusedrnn.lstm_cell(x, h, c, w_ih, w_hh, training=True)
    g_cpu = fusedrnn.lstm_cell_backward(saved_cpu, np.ones((B, H), np.float32))
    got = {k: None if v is None else np.asarray(v) for k, v in dict(h1=h1, c1=c1, **g._asdict()).items()}
    assert_named_close(got, dict(h1=h1_cpu, c1=c1_cpu, **g_cpu._asdict()), np.float32)
    h1, saved = fusedrnn.gru_cell(dev[0], dev[1], dev[3][: 3 * H], dev[4][: 3 * H], training=True)
    g = fusedrnn.gru_cell_backward(saved, np.ones((B, H), np.float32).view(Emulated))
    h1_cpu, saved_cpu = fusedrnn.gru_cell(x, h, w_ih[: 3 * H], w_hh[: 3 * H], training=True)
    g_cpu = fusedrnn.gru_cell_backward(saved_cpu, np.ones((B, H), np.float32))
    got = {k: None if v is None else np.asarray(v) for k, v in dict(h1=h1, **g._asdict()).items()}
    assert_named_close(got, dict(h1=h1_cpu, **g_cpu._asdict()), np.float32)


def test_errors_name_the_argument(emulated):
    p = make_problem(rng_for("emu-errors"), "lstm", 3, 2, 4, 5, dtype=np.float32)
    g = on_device(p)
    with pytest.raises(TypeError, match="^w_ih: expected a CUDA array like x"):
        fusedrnn.lstm_forward(g.x, p.w_ih, g.w_hh)
    with pytest.raises(TypeError, match="^x: expected a CUDA array"):
        fusedrnn.lstm_forward(p.x, g.w_ih, g.w_hh)
    with pytest.raises(TypeError, match=r"^w_hh: expected dtype float32 \(the dtype of x\), got float16"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh.astype(np.float16))
    with pytest.raises(TypeError, match="^x: expected dtype float32, float16 or bfloat16"):
        fusedrnn.lstm_forward(g.x.astype(np.float64), g.w_ih, g.w_hh)
    with pytest.raises(ValueError, match=r"^w_ih: expected shape \(4\*H=20, I=4\), got \(20, 3\)"):
        fusedrnn.lstm_forward(g.x, g.w_ih[:, :3], g.w_hh)
    with pytest.raises(ValueError, match=r"^w_hh: expected shape \(4\*H, P\) with a first"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh[:7])
    with pytest.raises(ValueError, match=r"^lengths: expected values in \[0, T=3\], got 4 at index 1"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, lengths=[1, 4])
    with pytest.raises(ValueError, match=r"^lengths: expected shape \(B=2,\), got \(3,\)"):
        fusedrnn.gru_forward(g.x, g.w_ih[:15], g.w_hh[:15], lengths=[1, 1, 1])
    y, _, _, saved = fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, training=True)
    with pytest.raises(TypeError, match="^dy: expected a CUDA array"):
        fusedrnn.lstm_backward(saved, p.dy)
    with pytest.raises(ValueError, match=r"^dcn: expected shape \(B=2, H=5\)"):
        fusedrnn.lstm_backward(saved, y, None, y[0, :1])
    with pytest.raises(TypeError, match=r"^out: expected None or a tuple of 3 arrays"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, out=[y, y, y])
    with pytest.raises(ValueError, match=r"^out\[1\] \(hn\): expected shape \(B=2, H=5\)"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, out=(y, y, y))
    with pytest.raises(ValueError, match=r"^out\[1\] \(hn\): overlaps an input"):
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, g.b_ih, g.b_hh, g.h0, g.c0,
                              out=(y, g.h0, g.c0))
    with pytest.raises(ValueError, match=r"^out\[0\] \(y\): expected a writeable C-contig"):
        yt = np.empty((2, 3, 5), np.float32).view(Emulated).transpose(1, 0, 2)
        fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, out=(yt, y[0], y[0]))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_out_buffers_are_written_and_returned(emulated, kind):
    p = make_problem(rng_for("emu-out", kind), kind, 4, 3, 2, 5, dtype=np.float32,
                     lengths="random", reverse=True)
    expected, _ = kernel_forward(on_device(p), training=False)
    out = tuple(np.full(np.shape(v), np.nan, np.float32).view(Emulated)
                for v in expected.values())
    g = on_device(p)
    if kind == "lstm":
        got = fusedrnn.lstm_forward(g.x, g.w_ih, g.w_hh, g.b_ih, g.b_hh, g.h0, g.c0,
                                    lengths=p.lengths, reverse=True, out=out)
    else:
        got = fusedrnn.gru_forward(g.x, g.w_ih, g.w_hh, g.b_ih, g.b_hh, g.h0,
                                   lengths=p.lengths, reverse=True, out=out)
    for a, b, e in zip(got, out, expected.values()):
        assert a is b
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def test_workspace_too_small_is_an_error(emulated):
    p = make_problem(rng_for("emu-ws"), "gru", 3, 2, 4, 5, dtype=np.float32)
    args = dict(dtype=0, device=0, stream=0, T=3, B=2, I=4, H=5, reverse=False,
                linear_before_reset=True, training=False, x=p.x.ctypes.data,
                w_ih=p.w_ih.ctypes.data, w_hh=p.w_hh.ctypes.data)
    need = emulated.gru_forward_workspace(args)
    assert need > 0
    ws = np.empty(need, np.uint8)
    y, hn = np.empty((3, 2, 5), np.float32), np.empty((2, 5), np.float32)
    args.update(y=y.ctypes.data, hn=hn.ctypes.data, workspace=ws.ctypes.data,
                workspace_bytes=need - 1)
    with pytest.raises(ValueError, match="workspace too small"):
        emulated.gru_forward(args)


def test_gpu_test_file_runs_on_the_emulation(emulated_module):
    """tests/test_cuda.py itself, with a stand-in CuPy over host memory (cuda_emulation/
    fake_cupy.py): checks the GPU tests and fusedrnn.cuda's CuPy adapter before any GPU does.
    The two largest persistent-kernel shapes are left to the GPU (minutes at -O0)."""
    env = dict(os.environ, FUSEDRNN_CUDA_EMULATED=emulated_module.path,
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "tests", "cuda_emulation"),
                                           os.environ.get("PYTHONPATH", "")]),
               # The emulation's device memory is host memory: on a GPU machine PyTorch's CUDA
               # tensors would hand its host loops real device pointers (it crashed, -11).
               CUDA_VISIBLE_DEVICES="")
    # (LD_PRELOAD stays: under .ci/sanitize the child imports the same sanitized extension.)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "fake_cupy", "-p", "no:cacheprovider",
         os.path.join(ROOT, "tests", "test_cuda.py"),
         "-k", "not 40x16x32x256 and not 20x16x16x1000 and not 10x32x8x300"],
        cwd=ROOT, env=env, capture_output=True, text=True)
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
    assert result.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail, tail
