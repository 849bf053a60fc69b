"""Fit the coefficients of the CPU kernels' float tanh (csrc/cpu/activations.hpp).

tanh(x) ~ x P(x^2) / Q(x^2) on (0, 9], with P of degree 6 and Q of degree 3 in x^2 and
Q(0) = 1, chosen to minimise the largest relative error: Loeb's iteration (weights 1 / (tanh Q)
turn the rational fit into a linear least-squares one) and then Lawson's (weights grown where
the error is largest). In x / 9 the columns stay well conditioned. Prints the float32
coefficients in the order Horner's scheme uses them. Run: python tools/fit_tanh.py
"""

import numpy as np

X = 9.0          # beyond it float32 tanh rounds to +-1 (activations.hpp clamps there)
NP, NQ = 7, 4    # coefficients of P and of Q (Q's first is 1)

x = np.concatenate([np.geomspace(1e-6, 0.05, 2000), np.linspace(0.05, X, 40000)])
t = np.tanh(x)
u = (x / X) ** 2


def fit(weights):
    """P and Q (in u) minimising sum (weights * (x P - t Q))^2."""
    a = np.column_stack([x * u**k for k in range(NP)] + [-t * u**k for k in range(1, NQ)])
    sol, *_ = np.linalg.lstsq(a * weights[:, None], t * weights, rcond=None)
    return sol[:NP], np.concatenate([[1.0], sol[NP:]])


def relative_error(p, q):
    return (x * np.polyval(p[::-1], u) / np.polyval(q[::-1], u) - t) / t


q_values = np.ones_like(x)
for _ in range(30):
    p, q = fit(1 / (t * q_values))
    q_values = np.polyval(q[::-1], u)
err = relative_error(p, q)
best = (np.abs(err).max(), p, q)
lawson = np.ones_like(x)
for _ in range(300):
    lawson *= np.sqrt(np.abs(err))
    lawson /= lawson.max()
    p, q = fit(lawson / (t * q_values))
    q_values = np.polyval(q[::-1], u)
    if (q_values <= 0).any():  # a pole in the range: keep the best fit so far
        break
    err = relative_error(p, q)
    if np.abs(err).max() < best[0]:
        best = (np.abs(err).max(), p, q)

worst, p, q = best
scale = X ** (-2.0 * np.arange(max(NP, NQ)))
p, q = np.float32(p * scale[:NP]), np.float32(q * scale[:NQ])
print(f"largest relative error in exact arithmetic: {worst:.2e}")
print("P (x^12 first):", ", ".join(f"{v:.9e}f" for v in p[::-1]))
print("Q (x^6 first): ", ", ".join(f"{v:.9e}f" for v in q[::-1]))
