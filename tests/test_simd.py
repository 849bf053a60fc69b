"""Every SIMD level this CPU runs gives the reference's numbers (FUSEDRNN_SIMD caps the level,
so each one is checked in a subprocess of its own)."""

import json
import os
import subprocess
import sys

import pytest

import fusedrnn

LEVELS = ["generic", "avx2", "avx512"]

SCRIPT = r"""
import json, numpy as np, fusedrnn
from fusedrnn import reference as ref
rng = np.random.default_rng(0)
T, B, I, H = 6, 3, 5, 37
worst = {}
for dtype in (np.float32, np.float64):
    x = rng.standard_normal((T, B, I)).astype(dtype)
    for cell, G in (("lstm", 4), ("gru", 3)):
        w = [rng.uniform(-.3, .3, s).astype(dtype) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
        fwd = getattr(fusedrnn, cell + "_forward")
        y = fwd(x, *w, lengths=[6, 2, 0], reverse=True)[0]
        y_ref = getattr(ref, cell + "_forward")(x.astype(np.float64), *[a.astype(np.float64) for a in w],
                                               lengths=[6, 2, 0], reverse=True)[0]
        worst[f"{cell}-{np.dtype(dtype).name}"] = float(np.abs(y - y_ref).max())
print(json.dumps({"simd": fusedrnn.info()["cpu_simd"], "worst": worst}))
"""


def level_rank(name):
    return LEVELS.index(name)


@pytest.mark.parametrize("level", LEVELS)
def test_simd_level_matches_reference(level):
    best = fusedrnn.info()["cpu_simd"]
    if level_rank(level) > level_rank(best):
        pytest.skip(f"this CPU runs {best}, not {level}")
    env = dict(os.environ, FUSEDRNN_SIMD=level)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    result = json.loads(out.stdout)
    assert result["simd"] == level
    # float32: the vectorised activations (~2e-7 relative) plus float32 rounding over 6 steps;
    # float64: the standard library's activations, so only summation order differs.
    for key, err in result["worst"].items():
        assert err < (1e-5 if key.endswith("float32") else 1e-12), (key, err)
