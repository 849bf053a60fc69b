"""Threads and build facts."""

import operator
import os
import platform

from . import _core, cuda


def set_num_threads(n):
    """Use ``n`` threads (>= 1) for the kernels and the BLAS under them."""
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"n: expected a positive number of threads, got {n}")
    _core.set_num_threads(n)


def get_num_threads():
    """The number of threads the kernels use."""
    return _core.get_num_threads()


def empty_cache():
    """Free the memory that fusedrnn keeps for reuse.

    Arrays of 1 MiB and more that fusedrnn allocated (outputs, saved states, gradients, its
    own scratch) go back, once freed, to a cache of at most 512 MiB (``FUSEDRNN_CACHE_MB``,
    read at the first call, sets another bound; 0 turns the cache off), so that the next call
    of the same shape need not have the system map and zero fresh pages. This empties it, as
    ``torch.cuda.empty_cache()`` does PyTorch's.
    """
    _core.empty_cache()


def info():
    """A dict describing this build: version, CPU SIMD level, BLAS, threads, CUDA."""
    from . import __version__

    return {
        "version": __version__,
        "machine": platform.machine(),
        "cpu_simd": _core.cpu_simd_level(),
        "blas": "scipy-openblas32 " + _core.blas_info().strip(),
        "threads": get_num_threads(),
        "cuda": cuda.device_info(),
    }


def get_include():
    """The directory of fusedrnn's C++ headers (``#include <fusedrnn/fusedrnn.hpp>``)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def get_cmake_dir():
    """The directory of fusedrnn's CMake package: pass it as ``-Dfusedrnn_DIR=...`` to
    ``find_package(fusedrnn CONFIG REQUIRED)``, then link ``fusedrnn::fusedrnn``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "share", "cmake", "fusedrnn")
