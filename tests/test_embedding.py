"""The installed C++ package: a CMake program built against fusedrnn.get_cmake_dir() gives the
reference's numbers."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fusedrnn
from fusedrnn import reference as ref

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "cpp")
API_ERRORS = os.path.join(os.path.dirname(__file__), "cpp")


def wave(n, scale, freq):
    return scale * np.sin(freq * np.arange(1, n + 1))


def test_get_include_and_cmake_dir_exist():
    assert os.path.isfile(os.path.join(fusedrnn.get_include(), "fusedrnn", "fusedrnn.hpp"))
    assert os.path.isfile(os.path.join(fusedrnn.get_cmake_dir(), "fusedrnnConfig.cmake"))


def run_step(args, timeout):
    """Runs one step of a build; a failure shows its output (CMake says what it missed)."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def build_and_run(source, target, build):
    """Configure and build the CMake project `source` against the installed package; run
    `target` and return what it printed."""
    run_step(["cmake", "-S", source, "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
              f"-Dfusedrnn_DIR={fusedrnn.get_cmake_dir()}"], 300)
    run_step(["cmake", "--build", str(build)], 300)
    return run_step([str(build / target)], 60)


needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")


@needs_cmake
def test_cpp_program_matches_reference(tmp_path):
    y = np.array([float(v) for v in build_and_run(EXAMPLE, "lstm_demo", tmp_path).split()])

    T, B, I, H = 5, 3, 4, 6
    y_ref = ref.lstm_forward(wave(T * B * I, 1.0, 0.1).reshape(T, B, I),
                             wave(4 * H * I, 0.4, 0.7).reshape(4 * H, I),
                             wave(4 * H * H, 0.4, 1.3).reshape(4 * H, H),
                             wave(4 * H, 0.1, 0.5), wave(4 * H, 0.1, 0.9),
                             lengths=np.array([5, 2, 0]), reverse=True)[0]
    np.testing.assert_allclose(y, y_ref.ravel(), rtol=1e-12, atol=1e-12)


@needs_cmake
def test_cpp_api_rejects_bad_arguments_by_name(tmp_path):
    """The C++ API checks its own arguments (tests/cpp/api_errors.cpp): std::invalid_argument
    naming the argument, with the Python API's message where Python can make the same call,
    and nothing written."""
    lines = build_and_run(API_ERRORS, "api_errors", tmp_path).splitlines()
    got = dict(line.split(": ", 1) for line in lines)
    assert got.pop("ok") == "no error"
    assert got.pop("untouched") == "1"
    assert got.pop("packed_close") == "1"
    expected = {
        "negative_steps": "steps: expected a size >= 0, got -1",
        "rows_over_blas": "x: T*B = 2147483647*2 exceeds the BLAS's 32-bit sizes",
        "gates_over_blas": "w_hh: 4*H = 4*1073741823 exceeds the BLAS's 32-bit sizes",
        "bytes_overflow": "gates: sizes too large to allocate",
        "proj_without_w_hr": "proj: expected P == H (= 5) without w_hr, got 0",
        "null_x": "x: expected an array of shape (T=3, B=2, I=4), got a null pointer",
        "bad_lengths": "lengths: expected values in [0, T=3], got 4 at index 1",
        "h0_is_hn": "hn: overlaps an input or another output",
        "y_is_x": "y: overlaps an input or another output",
        "null_dy": "dy: expected an array of shape (T=3, B=2, H=5), got a null pointer",
        "packed_other_weights": "packed: packed from other arrays than this call's weights",
        "pack_gates": "gates: expected 3 (GRU) or 4 (LSTM), got 5",
        "pack_null": "w_ih: expected an array of shape (4*H=20, I=4), got a null pointer",
        "pack_w_hr_without_proj": "proj: expected P >= 1 with w_hr, got 0",
    }
    assert got == expected
    # Where Python can make the same bad call, it shows the same message.
    x = np.zeros((3, 2, 4), np.float32)
    w_ih, w_hh = np.zeros((20, 4), np.float32), np.zeros((20, 5), np.float32)
    with pytest.raises(ValueError) as e:
        fusedrnn.lstm_forward(x, w_ih, w_hh, lengths=np.array([3, 4]))
    assert str(e.value) == expected["bad_lengths"]


@needs_cmake
def test_buffer_cache_policy(tmp_path):
    """tests/cpp/buffer_cache.cpp: large freed blocks are kept and reused, never for a request
    under half their size; the cache stays under its limit, oldest blocks leaving first."""
    lines = build_and_run(API_ERRORS, "buffer_cache", tmp_path).splitlines()
    got = {k: int(v) for k, v in (line.split(": ") for line in lines)}
    limit = got.pop("limit_mib")
    if limit == 0:
        pytest.skip("this build caches nothing (sanitizers)")
    assert limit == 512
    assert got == {
        "small_aligned": 1, "small_cached": 0,
        "big_on_huge_page": 1, "big_cached_mib": 10, "reused": 1,
        "not_twice_the_request": 1, "both_cached_mib": 14,
        # five 150 MiB blocks: the 10 and 4 MiB blocks and the first two 150s are evicted
        "bounded_mib": 450, "after_huge_mib": 450, "emptied": 0,
    }


@needs_cmake
def test_take_over_policy(tmp_path):
    """tests/cpp/take_over_policy.cpp. The wait for a late partner: the floor for short steps,
    half the cost of running the steps left alone for long ones, not counting a step's one-off
    work (a projection chunk) as every step's, and never under twice the step. After a lone
    take-over small problems run on one thread for 10 ms; take-overs that keep coming (the
    two-thread probes failing) double that, up to half a second; a take-over after a quiet
    spell starts over at 10 ms."""
    lines = build_and_run(API_ERRORS, "take_over_policy", tmp_path).splitlines()
    got = {k: int(v) for k, v in (line.split(": ") for line in lines)}
    busy = [got.pop(f"busy_window_ms_{i}") for i in range(10)]
    assert busy == [20, 40, 80, 160, 320, 500, 500, 500, 500, 500]
    assert got == {"solo_before_any": 0, "lone_window_ms": 10, "solo_inside": 1,
                   "solo_after": 0, "solo_in_long_window": 1, "after_quiet_ms": 10,
                   "wait_no_patience_us": 0, "wait_short_step_us": 200,
                   "wait_long_step_us": 99 * 300 // 2, "wait_one_off_us": 1220,
                   "wait_one_off_long_rest_us": 99 * 300 // 2}


@needs_cmake
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU affinity is Linux's")
def test_leave_cpu(tmp_path):
    """tests/cpp/cpu_placement.cpp. A woken worker on its caller's CPU moves to another it may
    use and keeps its affinity mask; allowed only one, it stays, and it never leaves a CPU it is
    not on."""
    lines = build_and_run(API_ERRORS, "cpu_placement", tmp_path).splitlines()
    got = {k: int(v) for k, v in (line.split(": ") for line in lines)}
    cpus = got.pop("cpus")
    assert got == {"moved_elsewhere": int(cpus > 1), "mask_kept": 1, "elsewhere_no_move": 1,
                   "alone_no_move": 1, "mask_kept_alone": 1}


@needs_cmake
def test_part_claims(tmp_path):
    """tests/cpp/part_claims.cpp. The caller claims a step's parts from the front, its worker
    from the back, each part once; a step's word is its parity's, empty after two steps until
    the caller refills it."""
    lines = build_and_run(API_ERRORS, "part_claims", tmp_path).splitlines()
    got = {k: int(v) for k, v in (line.split(": ") for line in lines)}
    assert got == {"front_0": 0, "back_0": 4, "front_1": 1, "back_1": 3, "back_2": 2,
                   "front_after_all": -1, "back_after_all": -1, "step_1_parts": 5,
                   "step_2_before_refill": -1, "step_2_after_refill": 4}



@needs_cmake
def test_float_activations(tmp_path):
    """tests/cpp/activations.cpp: the CPU kernels' float exp, sigmoid and tanh against double
    precision over about a million floats of each sign. tanh (a rational fit, at most 3.3e-7
    with FMA, 3.8e-7 without) is odd, never above 1, saturates to +-1 and keeps -0's sign;
    sigmoid stays in [0, 1]; NaN stays NaN."""
    lines = build_and_run(API_ERRORS, "activations", tmp_path).splitlines()
    got = {k: float(v) for k, v in (line.split(": ") for line in lines)}
    assert got.pop("tanh_worst_relative") < 4.5e-7
    assert got.pop("sigmoid_worst_relative") < 2e-7
    assert got.pop("exp_worst_relative") < 1.5e-7
    assert got.pop("tanh_tiny") == 1.0  # tanh(1e-30) is 1e-30, not 0
    assert got.pop("sigmoid_minus_inf") < 1e-37  # exp's input is clamped at 87: not exactly 0
    assert got == {"tanh_above_one": 0.0, "tanh_not_odd": 0.0, "tanh_inf": 1.0,
                   "tanh_minus_inf": -1.0, "tanh_minus_zero_sign": 1.0, "tanh_nan_is_nan": 1.0,
                   "sigmoid_outside_0_1": 0.0, "sigmoid_inf": 1.0, "sigmoid_nan_is_nan": 1.0}
