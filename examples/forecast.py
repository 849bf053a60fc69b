"""Time-series forecasting with an LSTM and a GRU side by side, trained with fusedrnn alone.

Two series: a noisy two-tone sine wave (synthetic) and the Mauna Loa atmospheric CO2
record, 1958-2001 (monthly means of statsmodels' weekly data set, shipped inside the
statsmodels package, so no download). Each model reads a window of past values and predicts
the next 12 at once through a linear head on its final hidden state; windows are taken
relative to their last value, so the CO2 trend looks the same in 1960 and in 2000. The last
quarter of each series is held out for validation.

Prints, per series and model: parameters, validation RMSE, training time, with naive
baselines for scale; saves examples/forecast.png (forecasts on the held-out part and the
validation error against training time). Needs the examples extra:
``pip install ".[examples]"`` (matplotlib, statsmodels). About 30 s on 2 cores.
"""

import argparse
import pathlib
import sys
import time

import numpy as np

import fusedrnn
from fusedrnn.optim import Adam, clip_grad_norm_

HORIZON = 12
HERE = pathlib.Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def sine_series(n=2400, seed=0):
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return (np.sin(2 * np.pi * t / 40) + 0.5 * np.sin(2 * np.pi * t / 13 + 1.0)
            + 0.05 * rng.standard_normal(n))


def co2_series():
    """Monthly mean CO2 at Mauna Loa in ppm, March 1958 - December 2001 (526 months)."""
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate()
    return monthly.to_numpy(np.float64), monthly.index


def windows(series, origins, window):
    """For each origin o: inputs series[o-window:o] and targets series[o:o+HORIZON], both
    minus series[o-1] (the last value seen)."""
    o = np.asarray(origins)[:, None]
    past = series[o - window + np.arange(window)]
    future = series[o + np.arange(HORIZON)]
    last = past[:, -1:]
    return past - last, future - last


class Dataset:
    """Training and validation windows of one series, scaled to unit spread."""

    def __init__(self, name, series, window, split=0.75):
        self.name, self.series, self.window = name, series, window
        self.split = int(len(series) * split)
        self.train_origins = np.arange(window, self.split - HORIZON + 1)
        self.val_origins = np.arange(self.split, len(series) - HORIZON + 1)
        x_tr, y_tr = windows(series, self.train_origins, window)
        self.scale = float(y_tr.std())
        self.x_tr, self.y_tr = self._scaled(x_tr, y_tr)
        self.x_va, self.y_va = self._scaled(*windows(series, self.val_origins, window))

    def _scaled(self, x, y):
        return ((x / self.scale)[..., None].astype(np.float32),
                (y / self.scale).astype(np.float32))


# --------------------------------------------------------------------------------------
# Model: fusedrnn.LSTM or fusedrnn.GRU + a linear head, with its hand-written backward
# --------------------------------------------------------------------------------------


class Forecaster:
    def __init__(self, kind, hidden, seed=0):
        cls = fusedrnn.LSTM if kind == "LSTM" else fusedrnn.GRU
        self.kind = kind
        self.rnn = cls(1, hidden, batch_first=True, seed=seed)
        k = 1 / np.sqrt(hidden)
        rng = np.random.default_rng(seed + 1)
        self.head = {"weight": rng.uniform(-k, k, (HORIZON, hidden)).astype(np.float32),
                     "bias": np.zeros(HORIZON, np.float32)}
        # One name -> array mapping for the optimiser; the values are the live parameters.
        self.params = {**{"rnn." + n: p for n, p in self.rnn.state_dict().items()},
                       **{"head." + n: p for n, p in self.head.items()}}

    def num_parameters(self):
        return sum(p.size for p in self.params.values())

    def __call__(self, x):
        """x (B, window, 1) -> predictions (B, HORIZON)."""
        _, state = self.rnn(x)
        hn = state[0] if self.kind == "LSTM" else state  # (num_layers, B, H)
        self._h = hn[-1]
        return self._h @ self.head["weight"].T + self.head["bias"]

    def backward(self, dpred):
        dhn = (dpred @ self.head["weight"])[None]  # gradient of the final hidden state
        if self.kind == "LSTM":
            self.rnn.backward(None, (dhn, None))  # y is unused: dy=None counts as zeros
        else:
            self.rnn.backward(None, dhn)
        grads = {"rnn." + n: g for n, g in self.rnn.grads.items()}
        grads["head.weight"] = dpred.T @ self._h
        grads["head.bias"] = dpred.sum(axis=0)
        return grads

    def predict(self, x):
        self.rnn.eval()  # no record for backward: faster
        try:
            return self(x)
        finally:
            self.rnn.train()


def train(model, data, steps, batch, lr, log_every=25):
    """Adam on MSE; returns (seconds, [(seconds so far, validation RMSE)])."""
    rng = np.random.default_rng(0)
    opt = Adam(model.params, lr=lr)
    curve, elapsed = [], 0.0
    for step in range(1, steps + 1):
        start = time.perf_counter()
        i = rng.integers(0, len(data.x_tr), batch)
        err = model(data.x_tr[i]) - data.y_tr[i]
        grads = model.backward(2 * err / err.size)
        clip_grad_norm_(grads, 1.0)
        opt.step(grads)
        elapsed += time.perf_counter() - start  # validation below is not training time
        if step % log_every == 0 or step == steps:
            curve.append((elapsed, val_rmse(model, data)))
            progress(f"  {data.name:<10} {model.kind:<4} step {step:>4}/{steps}  train MSE "
                     f"{np.mean(err ** 2):.4f}  val RMSE {curve[-1][1]:.4f}", step, steps)
    return elapsed, curve


def progress(line, step, steps):
    """Redraw one line on a terminal; elsewhere (a log) print five lines per run."""
    if sys.stdout.isatty():
        print("\r" + line, end="\n" if step == steps else "", flush=True)
    elif step == steps or step % max(1, steps // 5) < 25:
        print(line, flush=True)


def val_rmse(model, data):
    """Validation RMSE in the series' own units."""
    return float(np.sqrt(np.mean((model.predict(data.x_va) - data.y_va) ** 2))) * data.scale


# --------------------------------------------------------------------------------------
# Run, report, plot
# --------------------------------------------------------------------------------------


def baselines(data):
    _, y = windows(data.series, data.val_origins, data.window)
    out = {"naive (last value)": float(np.sqrt(np.mean(y ** 2)))}
    if data.name == "CO2":
        # The value a year earlier, moved to the current level: y_hat[o+k] = s[o+k-12] - s[o-1]
        o = data.val_origins[:, None] + np.arange(HORIZON)
        seasonal = data.series[o - 12] - data.series[data.val_origins - 1][:, None]
        out["seasonal naive (12)"] = float(np.sqrt(np.mean((seasonal - y) ** 2)))
    return out


def forecast_path(model, data):
    """Back-to-back 12-step forecasts over the validation part, in the series' units."""
    origins = data.val_origins[::HORIZON]
    x, _ = windows(data.series, origins, data.window)
    pred = model.predict((x / data.scale)[..., None].astype(np.float32)) * data.scale
    pred += data.series[origins - 1][:, None]
    return (origins[:, None] + np.arange(HORIZON)).ravel(), pred.ravel()


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(11, 3.4 * len(results)),
                             gridspec_kw=dict(width_ratios=[2.2, 1]))
    colors = {"LSTM": "tab:blue", "GRU": "tab:orange"}
    for row, (data, runs) in zip(axes, results):
        ax = row[0]
        lo = max(0, data.split - 3 * data.window)
        hi = min(len(data.series), data.split + 10 * data.window)  # keep the waves readable
        t = np.arange(lo, hi)
        x_axis = data.dates if hasattr(data, "dates") else np.arange(len(data.series))
        ax.plot(x_axis[t], data.series[t], color="0.3", lw=1, label="series")
        ax.axvline(x_axis[data.split], color="0.6", ls="--", lw=1)
        for model, *_ in runs:
            idx, pred = forecast_path(model, data)
            keep = idx < hi
            idx, pred = idx[keep], pred[keep]
            ax.plot(x_axis[idx], pred, color=colors[model.kind], lw=1.2,
                    label=f"{model.kind}, 12-step forecasts")
        ax.set_title(f"{data.name}: held-out part (right of the dashed line)")
        ax.legend(loc="upper left", fontsize=8)
        ax = row[1]
        for model, seconds, curve in runs:
            s, e = zip(*curve)
            ax.plot(s, e, color=colors[model.kind],
                    label=f"{model.kind} ({model.num_parameters():,} params)")
        ax.set_yscale("log")
        ax.set_xlabel("training time (s)")
        ax.set_ylabel("validation RMSE")
        ax.set_title(f"{data.name}: error vs time")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    print(f"saved {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500, help="Adam steps per model")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--out", default=str(HERE / "forecast.png"))
    args = parser.parse_args(argv)

    co2, dates = co2_series()
    sets = [Dataset("sine wave", sine_series(), window=48), Dataset("CO2", co2, window=36)]
    sets[1].dates = dates.to_numpy()
    results, table = [], []
    for data in sets:
        print(f"{data.name}: {len(data.x_tr)} training and {len(data.x_va)} validation "
              f"windows of {data.window} steps -> next {HORIZON}")
        runs = []
        for kind in ("LSTM", "GRU"):
            model = Forecaster(kind, args.hidden)
            seconds, curve = train(model, data, args.steps, batch=32, lr=1e-2)
            runs.append((model, seconds, curve))
            table.append((data.name, kind, model.num_parameters(), curve[-1][1], seconds))
        for name, err in baselines(data).items():
            table.append((data.name, name, 0, err, 0.0))
        results.append((data, runs))

    print(f"\n{'series':<10} {'model':<20} {'params':>7} {'val RMSE':>9} {'train time':>10}")
    for name, kind, n, err, seconds in table:
        t = f"{seconds:.1f}s" if seconds else "-"
        print(f"{name:<10} {kind:<20} {n:>7,} {err:>9.4f} {t:>10}")
    print("(RMSE over all 12 horizons, in the series' units: CO2 in ppm)")
    plot(results, args.out)


if __name__ == "__main__":
    main()
