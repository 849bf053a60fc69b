"""The CUDA backend: fusedrnn's LSTM and GRU kernels on NVIDIA GPUs.

Optional at build time (``pip install nvidia-cublas && pip install .
-Ccmake.define.FUSEDRNN_CUDA=ON``); it is a module of its own, ``fusedrnn._cuda``, loaded on
first use, so ``import fusedrnn`` never needs a CUDA library.

The functional API dispatches here when its arrays live on a GPU: CuPy arrays, PyTorch CUDA
tensors, or any object with ``__cuda_array_interface__`` or a CUDA DLPack device (wrapped
with CuPy, without a copy). Results are arrays of the input's own library (CuPy arrays for
wrapped objects) on the input's device, allocated by that library; the work is enqueued on
its current stream with no host round trip, except for ``lengths`` (B integers), which are
read on the host for checking, as PyTorch's packed sequences require. Storage dtypes:
float32, float16 and bfloat16 (bfloat16 through PyTorch; CuPy has no such dtype); the math
is float32 throughout (GEMMs accumulate in float32; float32 GEMMs do not use TF32).

``is_available()`` says whether the backend loaded and sees a device; ``unavailable_reason()``
says why not; ``device_info()`` is what ``python -m fusedrnn info`` prints.
"""

import ctypes
import glob
import importlib
import importlib.util
import os

import numpy as np

__all__ = ["device_info", "is_available", "is_device_array", "unavailable_reason"]

# --------------------------------------------------------------------------------------
# Loading the extension
# --------------------------------------------------------------------------------------

_loaded = None  # (module or None, reason or None), set on first use


def _preload_cublas():
    """Load the nvidia-cublas wheel's libcublasLt and libcublas globally, so that _cuda (linked
    by soname, no rpath) finds them: the pattern the package uses for scipy-openblas32. Without
    the wheel, the system loader's search (a CUDA toolkit on LD_LIBRARY_PATH) applies."""
    spec = importlib.util.find_spec("nvidia")
    for base in (spec.submodule_search_locations or []) if spec else []:
        for sub in ("cu13", "cu12", "cublas"):
            lib = os.path.join(base, sub, "lib")
            found = [sorted(glob.glob(os.path.join(lib, name + ".so.[0-9]*")))
                     for name in ("libcublasLt", "libcublas")]
            if all(found):
                for paths in found:
                    ctypes.CDLL(paths[0], mode=ctypes.RTLD_GLOBAL)
                return lib
    return None


def _load():
    global _loaded
    if _loaded is not None:
        return _loaded
    if importlib.util.find_spec("fusedrnn._cuda") is None:
        _loaded = (None, "this build has no CUDA backend (build it with: pip install nvidia-cublas "
                         "&& pip install . -Ccmake.define.FUSEDRNN_CUDA=ON)")
        return _loaded
    try:
        _preload_cublas()
        module = importlib.import_module("fusedrnn._cuda")
    except (ImportError, OSError) as e:
        _loaded = (None, f"the CUDA backend is built but does not load ({e}); is the "
                         f"nvidia-cublas wheel it was built against installed?")
        return _loaded
    try:
        count = module.device_count()
    except RuntimeError as e:
        _loaded = (module, f"no usable CUDA driver or device ({e})")
        return _loaded
    _loaded = (module, None if count > 0 else "no CUDA device found")
    return _loaded


def is_available():
    """True when the CUDA backend is built, loads, and sees at least one GPU."""
    module, reason = _load()
    return module is not None and reason is None


def unavailable_reason():
    """Why is_available() is False (None when it is True)."""
    return _load()[1]


def device_info():
    """A short description of the CUDA backend: built or not, runtime versions, devices."""
    module, reason = _load()
    if module is None:
        return "no (" + reason + ")"
    facts = module.runtime_info()
    if reason is not None:
        return f"built, not available ({reason}); {facts}"
    names = [f"cuda:{i} {module.device_name(i)}" for i in range(module.device_count())]
    return "yes: " + "; ".join(names) + "; " + facts


def _backend():
    module, reason = _load()
    if reason is not None:
        raise RuntimeError(f"fusedrnn: GPU arrays given, but the CUDA backend is unavailable: "
                           f"{reason}")
    return module


# --------------------------------------------------------------------------------------
# Array libraries: who owns a device array, and how to allocate like it
# --------------------------------------------------------------------------------------

_DTYPE_CODES = {"float32": 0, "float16": 1, "bfloat16": 2}  # csrc/cuda/api.hpp DType


class _CuPy:
    name = "cupy.ndarray"

    @staticmethod
    def device(a):
        return a.device.id

    @staticmethod
    def dtype(a):
        return str(a.dtype)

    @staticmethod
    def ptr(a):
        return a.data.ptr

    @staticmethod
    def shape(a):
        return tuple(a.shape)

    @staticmethod
    def contiguous(a):
        import cupy

        return cupy.ascontiguousarray(a)

    @staticmethod
    def is_c_contiguous(a):
        return a.flags.c_contiguous

    @staticmethod
    def nbytes(a):
        return a.nbytes

    @staticmethod
    def empty(shape, dtype, device):
        import cupy

        with cupy.cuda.Device(device):
            return cupy.empty(shape, dtype=dtype)

    @staticmethod
    def from_host(values, device):
        import cupy

        with cupy.cuda.Device(device):
            return cupy.asarray(values)

    @staticmethod
    def to_host(a):
        return a.get()

    @staticmethod
    def stream(device):
        import cupy

        with cupy.cuda.Device(device):
            return cupy.cuda.get_current_stream().ptr


class _Torch:
    name = "torch.Tensor"

    @staticmethod
    def _torch_dtype(name):
        import torch

        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                "uint8": torch.uint8, "int64": torch.int64}[name]

    @staticmethod
    def device(a):
        return a.device.index

    @staticmethod
    def dtype(a):
        return str(a.dtype).replace("torch.", "")

    @staticmethod
    def ptr(a):
        return a.data_ptr()

    @staticmethod
    def shape(a):
        return tuple(a.shape)

    @staticmethod
    def contiguous(a):
        return a.detach().contiguous()  # no autograd here: plain tensors in, plain tensors out

    @staticmethod
    def is_c_contiguous(a):
        return a.is_contiguous()

    @staticmethod
    def nbytes(a):
        return a.numel() * a.element_size()

    @staticmethod
    def empty(shape, dtype, device):
        import torch

        return torch.empty(shape, dtype=_Torch._torch_dtype(dtype),
                           device=torch.device("cuda", device))

    @staticmethod
    def from_host(values, device):
        import torch

        return torch.from_numpy(np.ascontiguousarray(values)).to(torch.device("cuda", device))

    @staticmethod
    def to_host(a):
        return a.detach().cpu().numpy()

    @staticmethod
    def stream(device):
        import torch

        return torch.cuda.current_stream(device).cuda_stream


_KDL_CUDA, _KDL_CUDA_MANAGED = 2, 13  # DLPack device types


def _dlpack_on_cuda(a):
    dev = getattr(a, "__dlpack_device__", None)
    if dev is None:
        return False
    try:
        return dev()[0] in (_KDL_CUDA, _KDL_CUDA_MANAGED)
    except Exception:
        return False


_Foreign = object()  # a GPU array of another library, taken through CuPy


def _library_of(a):
    """_CuPy, _Torch or _Foreign for a GPU array (by its type and interfaces alone: nothing is
    converted), None for anything else (NumPy arrays, lists, CPU tensors, None)."""
    # Exact types: an ndarray subclass may pose as a device array (the tests' host emulation).
    if a is None or type(a) in (np.ndarray, list, tuple, int, float):
        return None
    top = type(a).__module__.split(".")[0]
    if top == "cupy":
        return _CuPy
    if top == "torch":
        return _Torch if getattr(a, "is_cuda", False) else None
    try:
        has_cai = hasattr(a, "__cuda_array_interface__")
    except Exception:
        has_cai = False
    return _Foreign if has_cai or _dlpack_on_cuda(a) else None


def _as_device(a):
    """(library, array) for a GPU array, the array wrapped by CuPy when no supported library
    owns it; (None, a) for anything else."""
    library = _library_of(a)
    if library is not _Foreign:
        return library, a
    try:
        import cupy
    except ImportError:
        raise TypeError(f"{type(a).__name__} is a CUDA array; fusedrnn takes it through CuPy, "
                        f"which is not installed (or pass a torch.Tensor)") from None
    has_cai = hasattr(a, "__cuda_array_interface__")
    return _CuPy, (cupy.asarray(a) if has_cai else cupy.from_dlpack(a))


def is_device_array(a):
    """True for an array in GPU memory that the CUDA backend can take (CuPy's, PyTorch's, or
    any with __cuda_array_interface__ or a CUDA DLPack device). Converts nothing."""
    return _library_of(a) is not None


def any_on_device(*arrays):
    return any(is_device_array(a) for a in arrays)


def _type_name(a):
    t = type(a)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"


def _shape_str(dims):
    """((name, size), ...) as (T=5, B=3); plain sizes as (5, 3)."""
    parts = [f"{d[0]}={d[1]}" if isinstance(d, tuple) else str(d) for d in dims]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


class _Call:
    """One call's arrays: the library, device and dtype of `x` (or of the forward's x), and the
    checks, copies and allocations that follow from them. Errors name the argument and show
    the expected against the received, as the CPU path does."""

    def __init__(self, x, name="x"):
        self.lib, x = _as_device(x)
        if self.lib is None:
            raise TypeError(f"{name}: expected a CUDA array (other arguments are on the GPU), "
                            f"got {_type_name(x)}")
        self.device = self.lib.device(x)
        self.dtype = self.lib.dtype(x)
        if self.dtype not in _DTYPE_CODES:
            raise TypeError(f"{name}: expected dtype float32, float16 or bfloat16 for a GPU "
                            f"array, got {self.dtype}")

    def where(self):
        return f"{self.lib.name} on cuda:{self.device}"

    def device_array(self, name, a):
        lib, a = _as_device(a)
        if lib is None:
            raise TypeError(f"{name}: expected a CUDA array like x ({self.where()}), got "
                            f"{_type_name(a)}")
        if lib is not self.lib:
            raise TypeError(f"{name}: expected a {self.lib.name} like x, got {lib.name}")
        if lib.device(a) != self.device:
            raise ValueError(f"{name}: expected an array on cuda:{self.device} like x, got "
                             f"cuda:{lib.device(a)}")
        return a

    def shape_of(self, name, a, ndim, form):
        shape = self.lib.shape(self.device_array(name, a))
        if len(shape) != ndim:
            raise ValueError(f"{name}: expected a {ndim}-D array {form}, got shape "
                             f"{_shape_str(shape)}")
        return shape

    def checked(self, name, a, dims):
        """a after checking its library, device, dtype and shape against dims ((name, size),
        ...)."""
        a = self.device_array(name, a)
        dtype = self.lib.dtype(a)
        if dtype != self.dtype:
            raise TypeError(f"{name}: expected dtype {self.dtype} (the dtype of x), got {dtype}")
        shape = self.lib.shape(a)
        if shape != tuple(size for _, size in dims):
            raise ValueError(f"{name}: expected shape {_shape_str(dims)}, got {_shape_str(shape)}")
        return a

    def take(self, name, a, dims):
        """a checked, as a C-contiguous array (copied by its own library when not one)."""
        return self.lib.contiguous(self.checked(name, a, dims))

    def outputs(self, out, specs, inputs):
        """New arrays for specs ((name, dims), ...), or the arrays of `out` after checking
        them as the CPU path does: C-contiguous, and overlapping no input and no other output
        (the kernels read inputs while they write outputs)."""
        if out is None:
            return [self.empty(*(size for _, size in dims)) for _, dims in specs]
        names = [name for name, _ in specs]
        if not isinstance(out, tuple) or len(out) != len(specs):
            raise TypeError(f"out: expected None or a tuple of {len(specs)} arrays "
                            f"({', '.join(names)}), got {type(out).__name__}")
        arrays = []
        for i, (name, dims) in enumerate(specs):
            label = f"out[{i}] ({name})"
            a = self.checked(label, out[i], dims)
            if not self.lib.is_c_contiguous(a):
                raise ValueError(f"{label}: expected a writeable C-contiguous array")
            arrays.append(a)
        spans = [(self.lib.ptr(a), self.lib.ptr(a) + self.lib.nbytes(a)) for a in arrays]
        others = [(self.lib.ptr(a), self.lib.ptr(a) + self.lib.nbytes(a))
                  for a in inputs if a is not None]
        for i, (lo, hi) in enumerate(spans):
            if hi > lo and any(lo < o_hi and o_lo < hi for o_lo, o_hi in others + spans[i + 1:]):
                raise ValueError(f"out[{i}] ({names[i]}): overlaps an input or another output")
        return arrays

    def take_optional(self, name, a, dims):
        return None if a is None else self.take(name, a, dims)

    def empty(self, *shape, dtype=None):
        return self.lib.empty(shape, dtype or self.dtype, self.device)

    def ptr(self, a):
        return 0 if a is None else self.lib.ptr(a)

    def lengths(self, obj, batch, steps):
        """lengths as int64 on this device after the CPU path's checks (read on the host)."""
        if obj is None:
            return None
        lib, a = _as_device(obj)
        host = np.asarray(lib.to_host(a) if lib is not None else obj)
        if host.dtype.kind not in "iu":
            raise ValueError(f"lengths: expected integers, got dtype {host.dtype}")
        if host.shape != (batch,):
            raise ValueError(f"lengths: expected shape (B={batch},), got {_shape_str(host.shape)}")
        host = host.astype(np.int64, casting="unsafe")
        bad = np.flatnonzero((host < 0) | (host > steps))
        if bad.size:
            b = int(bad[0])
            raise ValueError(f"lengths: expected values in [0, T={steps}], got {host[b]} at "
                             f"index {b}")
        return self.lib.from_host(host, self.device)

    def args(self, **sizes):
        """The common part of a kernel call's argument dict."""
        return dict(sizes, dtype=_DTYPE_CODES[self.dtype], device=self.device,
                    stream=self.lib.stream(self.device))

    def run(self, kernel, workspace_query, args):
        """Allocate the workspace the kernel asks for (with the caller's library) and run."""
        nbytes = int(workspace_query(args))
        ws = self.empty(max(nbytes, 1), dtype="uint8")
        args.update(workspace=self.lib.ptr(ws), workspace_bytes=nbytes)
        kernel(args)
        # ws and the callers' temporary copies may be freed once the kernels are enqueued: the
        # caller's allocator (CuPy's pool, PyTorch's caching allocator) reuses a freed block
        # only in order on the same stream.


# --------------------------------------------------------------------------------------
# Saved state between a training forward and its backward
# --------------------------------------------------------------------------------------


class LstmSaved:
    """What lstm_backward needs from a training lstm_forward on the GPU (opaque)."""

    def __init__(self, call, args, arrays):
        self._call, self._args, self._arrays = call, args, arrays
        self.steps, self.batch, self.output_size = args["T"], args["B"], args["P"]

    def __repr__(self):
        return (f"<fusedrnn LstmSaved T={self.steps} B={self.batch} H={self._args['H']} "
                f"{self._call.dtype} cuda:{self._call.device}>")


class GruSaved:
    """What gru_backward needs from a training gru_forward on the GPU (opaque)."""

    def __init__(self, call, args, arrays):
        self._call, self._args, self._arrays = call, args, arrays
        self.steps, self.batch, self.output_size = args["T"], args["B"], args["H"]

    def __repr__(self):
        return (f"<fusedrnn GruSaved T={self.steps} B={self.batch} H={self._args['H']} "
                f"{self._call.dtype} cuda:{self._call.device}>")


def _problem_pointers(call, arrays):
    return {k: call.ptr(v) for k, v in arrays.items()}


# --------------------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------------------


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None, *, w_hr=None,
                 lengths=None, reverse=False, training=False, out=None):
    """fusedrnn.lstm_forward on GPU arrays (same arguments and results)."""
    module = _backend()
    c = _Call(x)
    T, B, I = c.shape_of("x", x, 3, "(T, B, I)")
    whh = c.shape_of("w_hh", w_hh, 2, "(4*H, P)")
    if whh[0] % 4:
        raise ValueError(f"w_hh: expected shape (4*H, P) with a first dimension divisible by 4, "
                         f"got {_shape_str(whh)}")
    H = whh[0] // 4
    P = H if w_hr is None else c.shape_of("w_hr", w_hr, 2, "(P, H)")[0]
    out_name = "H" if w_hr is None else "P"
    inputs = dict(
        x=c.take("x", x, [("T", T), ("B", B), ("I", I)]),
        w_ih=c.take("w_ih", w_ih, [("4*H", 4 * H), ("I", I)]),
        w_hh=c.take("w_hh", w_hh, [("4*H", 4 * H), (out_name, P)]),
        b_ih=c.take_optional("b_ih", b_ih, [("4*H", 4 * H)]),
        b_hh=c.take_optional("b_hh", b_hh, [("4*H", 4 * H)]),
        w_hr=c.take_optional("w_hr", w_hr, [("P", P), ("H", H)]),
    )
    h0 = c.take_optional("h0", h0, [("B", B), (out_name, P)])
    c0 = c.take_optional("c0", c0, [("B", B), ("H", H)])
    inputs["lengths"] = c.lengths(lengths, B, T)

    y, hn, cn = c.outputs(out, [("y", [("T", T), ("B", B), (out_name, P)]),
                                ("hn", [("B", B), (out_name, P)]), ("cn", [("B", B), ("H", H)])],
                          list(inputs.values()) + [h0, c0])
    saved_arrays = {}
    if training:
        saved_arrays = dict(gates=c.empty(T, B, 4 * H), c_prev=c.empty(T, B, H),
                            h_prev=c.empty(T, B, P))
    args = c.args(T=T, B=B, I=I, H=H, P=P, reverse=bool(reverse), training=bool(training))
    args.update(_problem_pointers(c, inputs), **_problem_pointers(c, saved_arrays))
    args.update(h0=c.ptr(h0), c0=c.ptr(c0), y=c.ptr(y), hn=c.ptr(hn), cn=c.ptr(cn))
    c.run(module.lstm_forward, module.lstm_forward_workspace, args)
    saved = LstmSaved(c, args, {**inputs, **saved_arrays}) if training else None
    return y, hn, cn, saved


def lstm_backward(saved, dy, dhn=None, dcn=None):
    """fusedrnn.lstm_backward from a GPU forward's saved: a tuple in LstmGrads order."""
    module = _backend()
    c, a, arrays = saved._call, saved._args, saved._arrays
    T, B, I, H, P = a["T"], a["B"], a["I"], a["H"], a["P"]
    out_name = "H" if arrays["w_hr"] is None else "P"
    dy = c.take("dy", dy, [("T", T), ("B", B), (out_name, P)])
    dhn = c.take_optional("dhn", dhn, [("B", B), (out_name, P)])
    dcn = c.take_optional("dcn", dcn, [("B", B), ("H", H)])
    grads = dict(dx=c.empty(T, B, I), dh0=c.empty(B, P), dc0=c.empty(B, H),
                 dw_ih=c.empty(4 * H, I), dw_hh=c.empty(4 * H, P),
                 db_ih=None if arrays["b_ih"] is None else c.empty(4 * H),
                 db_hh=None if arrays["b_hh"] is None else c.empty(4 * H),
                 dw_hr=None if arrays["w_hr"] is None else c.empty(P, H))
    args = dict(a, stream=c.lib.stream(c.device))  # the stream current now, not at forward
    args.update(_problem_pointers(c, grads), dy=c.ptr(dy), dhn=c.ptr(dhn), dcn=c.ptr(dcn))
    c.run(module.lstm_backward, module.lstm_backward_workspace, args)
    return tuple(grads[k] for k in ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh",
                                    "dw_hr"))


# --------------------------------------------------------------------------------------
# GRU
# --------------------------------------------------------------------------------------


def gru_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, lengths=None, reverse=False,
                linear_before_reset=True, training=False, out=None):
    """fusedrnn.gru_forward on GPU arrays (same arguments and results)."""
    module = _backend()
    c = _Call(x)
    T, B, I = c.shape_of("x", x, 3, "(T, B, I)")
    whh = c.shape_of("w_hh", w_hh, 2, "(3*H, H)")
    if whh[0] % 3:
        raise ValueError(f"w_hh: expected shape (3*H, H) with a first dimension divisible by 3, "
                         f"got {_shape_str(whh)}")
    H = whh[0] // 3
    inputs = dict(
        x=c.take("x", x, [("T", T), ("B", B), ("I", I)]),
        w_ih=c.take("w_ih", w_ih, [("3*H", 3 * H), ("I", I)]),
        w_hh=c.take("w_hh", w_hh, [("3*H", 3 * H), ("H", H)]),
        b_ih=c.take_optional("b_ih", b_ih, [("3*H", 3 * H)]),
        b_hh=c.take_optional("b_hh", b_hh, [("3*H", 3 * H)]),
    )
    h0 = c.take_optional("h0", h0, [("B", B), ("H", H)])
    inputs["lengths"] = c.lengths(lengths, B, T)

    y, hn = c.outputs(out, [("y", [("T", T), ("B", B), ("H", H)]), ("hn", [("B", B), ("H", H)])],
                      list(inputs.values()) + [h0])
    saved_arrays = {}
    if training:
        width = (4 if linear_before_reset else 3) * H  # fusedrnn.hpp gru_saved_width
        saved_arrays = dict(gates=c.empty(T, B, width), h_prev=c.empty(T, B, H))
    args = c.args(T=T, B=B, I=I, H=H, reverse=bool(reverse),
                  linear_before_reset=bool(linear_before_reset), training=bool(training))
    args.update(_problem_pointers(c, inputs), **_problem_pointers(c, saved_arrays))
    args.update(h0=c.ptr(h0), y=c.ptr(y), hn=c.ptr(hn))
    c.run(module.gru_forward, module.gru_forward_workspace, args)
    saved = GruSaved(c, args, {**inputs, **saved_arrays}) if training else None
    return y, hn, saved


def gru_backward(saved, dy, dhn=None):
    """fusedrnn.gru_backward from a GPU forward's saved: a tuple in GruGrads order."""
    module = _backend()
    c, a, arrays = saved._call, saved._args, saved._arrays
    T, B, I, H = a["T"], a["B"], a["I"], a["H"]
    dy = c.take("dy", dy, [("T", T), ("B", B), ("H", H)])
    dhn = c.take_optional("dhn", dhn, [("B", B), ("H", H)])
    grads = dict(dx=c.empty(T, B, I), dh0=c.empty(B, H), dw_ih=c.empty(3 * H, I),
                 dw_hh=c.empty(3 * H, H),
                 db_ih=None if arrays["b_ih"] is None else c.empty(3 * H),
                 db_hh=None if arrays["b_hh"] is None else c.empty(3 * H))
    args = dict(a, stream=c.lib.stream(c.device))
    args.update(_problem_pointers(c, grads), dy=c.ptr(dy), dhn=c.ptr(dhn))
    c.run(module.gru_backward, module.gru_backward_workspace, args)
    return tuple(grads[k] for k in ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"))
