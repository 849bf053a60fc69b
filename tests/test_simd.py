"""Every SIMD level this CPU runs gives the reference's numbers (FUSEDRNN_SIMD caps the level,
so each one is checked in a subprocess of its own)."""

import json
import os
import subprocess
import sys

import pytest

import fusedrnn

LEVELS = ["generic", "avx2", "avx512"]
# avx2wide: AVX2 instructions with the AVX-512 build's 64-byte vectors and panel layout, so the
# layout that AVX-512 machines run is checked on this AVX2 machine too.
CHECKED = LEVELS + ["avx2wide"]

SCRIPT = r"""
import json, numpy as np, fusedrnn
from fusedrnn import reference as ref
rng = np.random.default_rng(0)
# H = 97: three 32-lane panels, the last one short; B = 96: enough work per step that the
# time loop is split over two threads.
T, B, I, H, P = 6, 96, 5, 97, 41
lengths = rng.integers(0, T + 1, B)
worst = {}
for dtype in (np.float32, np.float64):
    x = rng.standard_normal((T, B, I)).astype(dtype)
    for cell in ("lstm", "lstmp", "gru", "gru_original"):
        G, out = (3, H) if cell.startswith("gru") else (4, P if cell == "lstmp" else H)
        shapes = [(G * H, I), (G * H, out), (G * H,), (G * H,)] + ([(P, H)] if cell == "lstmp" else [])
        w = [rng.uniform(-.3, .3, s).astype(dtype) for s in shapes]
        w64 = [a.astype(np.float64) for a in w]
        if cell.startswith("lstm"):
            kw = dict(w_hr=w[4]) if cell == "lstmp" else {}
            kw64 = dict(w_hr=w64[4]) if cell == "lstmp" else {}
            y, *_, saved = fusedrnn.lstm_forward(x, *w[:4], lengths=lengths, reverse=True,
                                                 training=True, **kw)
            g = fusedrnn.lstm_backward(saved, np.ones_like(y))
            y_ref, *_, cache = ref.lstm_forward(x.astype(np.float64), *w64[:4], lengths=lengths,
                                                reverse=True, **kw64)
            g_ref = ref.lstm_backward(cache, np.ones_like(y_ref))
        else:
            lbr = cell == "gru"
            y, _, saved = fusedrnn.gru_forward(x, *w, lengths=lengths, reverse=True,
                                               linear_before_reset=lbr, training=True)
            g = fusedrnn.gru_backward(saved, np.ones_like(y))
            y_ref, _, cache = ref.gru_forward(x.astype(np.float64), *w64, lengths=lengths,
                                              reverse=True, linear_before_reset=lbr)
            g_ref = ref.gru_backward(cache, np.ones_like(y_ref))
        scale = lambda a: max(1.0, float(np.abs(a).max()))
        worst[f"{cell}-{np.dtype(dtype).name}"] = max(
            float(np.abs(y - y_ref).max()),
            float(np.abs(g.dx - g_ref["dx"]).max()) / scale(g_ref["dx"]),
            float(np.abs(g.dw_hh - g_ref["dw_hh"]).max()) / scale(g_ref["dw_hh"]))
print(json.dumps({"simd": fusedrnn.info()["cpu_simd"], "worst": worst}))
"""


def level_rank(name):
    return LEVELS.index("avx2" if name == "avx2wide" else name)


@pytest.mark.parametrize("level", CHECKED)
def test_simd_level_matches_reference(level):
    best = fusedrnn.info()["cpu_simd"]
    if level_rank(level) > level_rank(best):
        pytest.skip(f"this CPU runs {best}, not {level}")
    env = dict(os.environ, FUSEDRNN_SIMD=level)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    result = json.loads(out.stdout)
    assert result["simd"] == level
    # float32: the vectorised activations (~2e-7 relative) plus float32 rounding over 6 steps
    # and sums over up to T*B = 576 terms (gradients relative to their largest entry);
    # float64: the standard library's activations, so only summation order differs.
    for key, err in result["worst"].items():
        assert err < (1e-5 if key.endswith("float32") else 1e-12), (key, err)
