"""The installed C++ package: a CMake program built against fusedrnn.get_cmake_dir() gives the
reference's numbers."""

import os
import shutil
import subprocess

import numpy as np
import pytest

import fusedrnn
from fusedrnn import reference as ref

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "cpp")


def wave(n, scale, freq):
    return scale * np.sin(freq * np.arange(1, n + 1))


def test_get_include_and_cmake_dir_exist():
    assert os.path.isfile(os.path.join(fusedrnn.get_include(), "fusedrnn", "fusedrnn.hpp"))
    assert os.path.isfile(os.path.join(fusedrnn.get_cmake_dir(), "fusedrnnConfig.cmake"))


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cpp_program_matches_reference(tmp_path):
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", EXAMPLE, "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                    f"-Dfusedrnn_DIR={fusedrnn.get_cmake_dir()}"], check=True,
                   capture_output=True, timeout=300)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True,
                   timeout=300)
    out = subprocess.run([str(build / "lstm_demo")], check=True, capture_output=True,
                         text=True, timeout=60)
    y = np.array([float(v) for v in out.stdout.split()])

    T, B, I, H = 5, 3, 4, 6
    y_ref = ref.lstm_forward(wave(T * B * I, 1.0, 0.1).reshape(T, B, I),
                             wave(4 * H * I, 0.4, 0.7).reshape(4 * H, I),
                             wave(4 * H * H, 0.4, 1.3).reshape(4 * H, H),
                             wave(4 * H, 0.1, 0.5), wave(4 * H, 0.1, 0.9),
                             lengths=np.array([5, 2, 0]), reverse=True)[0]
    np.testing.assert_allclose(y, y_ref.ravel(), rtol=1e-12, atol=1e-12)
