"""pytest plugin: runs tests/test_cuda.py, the GPU tests, on the host emulation, so that the
test file and fusedrnn.cuda's CuPy adapter are exercised without a GPU.

Installs a stand-in ``cupy`` module (NumPy arrays in host memory, with the attributes and
functions that test_cuda.py and fusedrnn.cuda use) and makes fusedrnn.cuda load the emulated
extension named by FUSEDRNN_CUDA_EMULATED (its path). Used by
tests/test_cuda_emulated.py::test_gpu_test_file_runs_on_the_emulation:

    FUSEDRNN_CUDA_EMULATED=build/.../_cuda_emulated.so \\
        python -m pytest -p fake_cupy tests/test_cuda.py     # tests/cuda_emulation on sys.path
"""

import contextlib
import ctypes
import importlib.util
import math
import os
import sys
import types

import numpy as np


class ndarray(np.ndarray):
    """A host array posing as a CuPy array."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.ctypes.data)

    @property
    def device(self):
        return types.SimpleNamespace(id=0)

    @property
    def __cuda_array_interface__(self):
        strides = None if self.flags.c_contiguous else self.strides
        return {"shape": self.shape, "typestr": self.dtype.str, "strides": strides,
                "data": (self.ctypes.data, False), "version": 3}

    def get(self, stream=None):
        return np.array(self)


ndarray.__module__ = "cupy"  # how fusedrnn.cuda recognises CuPy's arrays


def _wrap(a):
    return np.asarray(a).view(ndarray)


def _from_interface(obj):
    cai = obj.__cuda_array_interface__
    dtype = np.dtype(cai["typestr"])
    count = math.prod(cai["shape"])
    buf = (ctypes.c_char * (count * dtype.itemsize)).from_address(cai["data"][0])
    return np.frombuffer(buf, dtype).reshape(cai["shape"]).view(ndarray)


def asarray(a, dtype=None):
    if not isinstance(a, np.ndarray) and hasattr(a, "__cuda_array_interface__"):
        return _from_interface(a)
    if isinstance(a, ndarray) and dtype is None:
        return a
    return _wrap(np.array(a, dtype=dtype))  # a host array is copied, as to a device


def ascontiguousarray(a):
    return _wrap(np.ascontiguousarray(a))


def asfortranarray(a):
    return _wrap(np.asfortranarray(a))


def empty(shape, dtype=np.float32):
    return _wrap(np.empty(shape, dtype))


def empty_like(a):
    return _wrap(np.empty_like(a))


def ones_like(a):
    return _wrap(np.ones_like(a))


def from_dlpack(a):
    return _wrap(np.from_dlpack(a))


class _Stream:
    ptr = 0

    def __init__(self, non_blocking=False):
        self.non_blocking = non_blocking

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        pass


def _module():
    cupy = types.ModuleType("cupy")
    cupy.__doc__ = __doc__
    cupy.ndarray = ndarray
    for name in ("asarray", "ascontiguousarray", "asfortranarray", "empty", "empty_like",
                 "ones_like", "from_dlpack"):
        setattr(cupy, name, globals()[name])
    cupy.float16, cupy.float32, cupy.float64 = np.float16, np.float32, np.float64
    cuda = types.ModuleType("cupy.cuda")
    cuda.Device = lambda device=0: contextlib.nullcontext()
    cuda.Stream = _Stream
    cuda.get_current_stream = lambda: _Stream()
    cupy.cuda = cuda
    return cupy


def pytest_configure(config):
    path = os.environ["FUSEDRNN_CUDA_EMULATED"]
    spec = importlib.util.spec_from_file_location("_cuda_emulated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["cupy"] = _module()
    sys.modules["cupy.cuda"] = sys.modules["cupy"].cuda

    import fusedrnn.cuda

    fusedrnn.cuda._load = lambda: (module, None)
