"""``python -m fusedrnn demo``: forecast a noisy two-tone sine wave with an LSTM and a GRU.

NumPy and fusedrnn only. Each model reads a window of the last 48 values and predicts the
next 12 at once (a linear head on the final hidden state), trained with Adam on mean squared
error; the table compares parameter counts, validation error and training time, with the
naive forecast (repeat the last value) for scale. examples/forecast.py is the longer version
(real data, plots).
"""

import sys
import time

import numpy as np

import fusedrnn
from fusedrnn.optim import Adam, clip_grad_norm_

WINDOW, HORIZON = 48, 12


def sine_series(n=2400, seed=0):
    """Two incommensurate tones plus a little noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return (np.sin(2 * np.pi * t / 40) + 0.5 * np.sin(2 * np.pi * t / 13 + 1.0)
            + 0.05 * rng.standard_normal(n))


def windows(series, window=WINDOW, horizon=HORIZON):
    """Inputs (N, window, 1) and targets (N, horizon), both relative to the window's last
    value (so a trend or level shift looks the same everywhere)."""
    idx = np.arange(len(series) - window - horizon + 1)[:, None]
    past = series[idx + np.arange(window)]
    future = series[idx + window + np.arange(horizon)]
    last = past[:, -1:]
    return (past - last)[..., None], future - last


class Forecaster:
    """An LSTM or GRU (batch_first) with a linear head on the last layer's final state."""

    def __init__(self, kind, hidden=32, seed=0):
        cls = fusedrnn.LSTM if kind == "LSTM" else fusedrnn.GRU
        self.kind = kind
        self.rnn = cls(1, hidden, batch_first=True, seed=seed)
        rng = np.random.default_rng(seed + 1)
        k = 1 / np.sqrt(hidden)
        self.head = {"weight": rng.uniform(-k, k, (HORIZON, hidden)).astype(np.float32),
                     "bias": np.zeros(HORIZON, np.float32)}
        self.params = {**{"rnn." + n: p for n, p in self.rnn.state_dict().items()},
                       **{"head." + n: p for n, p in self.head.items()}}

    def num_parameters(self):
        return sum(p.size for p in self.params.values())

    def predict(self, x):
        _, state = self.rnn(x)
        self._h = (state[0] if self.kind == "LSTM" else state)[-1]  # (B, H): last layer
        return self._h @ self.head["weight"].T + self.head["bias"]

    def backward(self, dpred):
        """Gradients of every parameter given d loss / d prediction."""
        dh = np.zeros((1,) + self._h.shape, np.float32)
        dh[0] = dpred @ self.head["weight"]
        if self.kind == "LSTM":
            self.rnn.backward(None, (dh, None))
        else:
            self.rnn.backward(None, dh)
        grads = {"rnn." + n: g for n, g in self.rnn.grads.items()}
        grads["head.weight"] = dpred.T @ self._h
        grads["head.bias"] = dpred.sum(axis=0)
        return grads


def rmse(model, x, y):
    model.rnn.eval()
    try:
        return float(np.sqrt(np.mean((model.predict(x) - y) ** 2)))
    finally:
        model.rnn.train()


class ProgressBar:
    """A one-line text bar; redrawn in place on a terminal, printed once when done elsewhere."""

    def __init__(self, label, total, width=30, stream=None):
        self.label, self.total, self.width = label, total, width
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()

    def update(self, done, note=""):
        if not self.tty and done < self.total:
            return
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        end = "\n" if done >= self.total else ""
        self.stream.write(f"\r  {self.label:<5} [{bar}] {done:>4}/{self.total} {note}{end}")
        self.stream.flush()


def train(model, x, y, steps, batch=64, lr=1e-2, seed=0, progress=True):
    """Adam on MSE with gradient clipping; returns the training time in seconds."""
    rng = np.random.default_rng(seed)
    opt = Adam(model.params, lr=lr)
    bar = ProgressBar(model.kind, steps) if progress else None
    start = time.perf_counter()
    loss = float("nan")
    for step in range(1, steps + 1):
        i = rng.integers(0, len(x), batch)
        err = model.predict(x[i]) - y[i]
        loss = float(np.mean(err ** 2))
        grads = model.backward(2 * err / err.size)
        clip_grad_norm_(grads, 1.0)
        opt.step(grads)
        if bar and (step % 10 == 0 or step == steps):
            bar.update(step, f"loss {loss:.4f}")
    return time.perf_counter() - start


def run(steps=600, hidden=32, stream=None):
    """Train both models on the sine task and print the comparison table."""
    out = stream or sys.stdout
    series = sine_series().astype(np.float32)
    split = int(len(series) * 0.75)
    x_tr, y_tr = windows(series[:split])
    x_va, y_va = windows(series[split:])
    print(f"fusedrnn {fusedrnn.__version__}: forecast the next {HORIZON} steps of a noisy "
          f"two-tone sine wave from the last {WINDOW}", file=out)
    print(f"  {len(x_tr)} training windows, {len(x_va)} validation windows; hidden size "
          f"{hidden}, {steps} Adam steps of 64 windows each\n", file=out)
    rows = []
    for kind in ("LSTM", "GRU"):
        model = Forecaster(kind, hidden)
        seconds = train(model, x_tr, y_tr, steps)
        rows.append((kind, model.num_parameters(), rmse(model, x_va, y_va), seconds))
    naive = float(np.sqrt(np.mean(y_va ** 2)))  # predicting "no change"
    print(f"\n  {'model':<6} {'parameters':>10} {'val RMSE':>9} {'train time':>11}", file=out)
    for kind, n, err, seconds in rows:
        print(f"  {kind:<6} {n:>10,} {err:>9.4f} {seconds:>10.1f}s", file=out)
    print(f"  {'naive':<6} {0:>10} {naive:>9.4f} {'-':>11}   (repeat the last value)",
          file=out)
    return rows
