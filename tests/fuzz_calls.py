"""Random, mostly malformed calls of the functional API (run by test_fuzz.py in a subprocess,
so that a crash fails the test instead of killing pytest).

    python tests/fuzz_calls.py SEED CALLS

Prints a JSON summary: counts of successful calls and of each exception type, and every
error message that does not start with the name of an argument.
"""

import json
import random
import sys

import numpy as np

import fusedrnn

NAMES = ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0", "w_hr", "lengths", "dy", "dhn",
         "dcn", "saved")


def main(seed, calls):
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    counts, unnamed = {}, []

    def array(shape, dtype):
        a = rng.standard_normal(shape).astype(dtype)
        r = pick.random()
        if r < 0.1 and a.ndim >= 2:
            a = np.asfortranarray(a)
        elif r < 0.2 and a.ndim >= 1 and a.shape[-1] > 1:  # a strided view
            a = np.repeat(a, 2, axis=-1)[..., ::2]
        elif r > 0.97 and a.size:
            a.flat[0] = pick.choice([np.nan, np.inf, -np.inf])
        return a

    for _ in range(calls):
        cell = pick.choice(["lstm", "lstmp", "gru", "gru_original"])
        T, B, I, H = (pick.choice([0, 1, 2, 3, 5, 17, 33]) for _ in range(4))
        # Now and then a huge T with I = 0: every input stays empty while T*B rows exceed the
        # BLAS's sizes (or, with B = 0, there is nothing to do). Shapes are then kept exact:
        # a perturbed dimension would make a huge array here.
        huge = pick.random() < 0.03
        if huge:
            T, I = pick.choice([2**31, 2**33, 2**40]), 0
        G = 3 if cell.startswith("gru") else 4
        P = max(1, H // 2) if cell == "lstmp" else H
        dt = pick.choice([np.float32, np.float64])

        def arg(shape, optional=False):
            r = pick.random()
            if optional and r < 0.25:
                return None
            if huge:
                return array(shape, dt)
            if r > 0.985:
                return pick.choice([[1.0, 2.0], "x", 3, np.zeros(shape, np.int32)])
            if r > 0.96:
                return array(shape, np.float32 if dt == np.float64 else np.float64)
            if r > 0.93:
                return array(tuple(s + 1 for s in shape), dt)
            if r > 0.92:
                return array(shape + (1,), dt)
            return array(shape, dt)

        x, w_ih, w_hh = arg((T, B, I)), arg((G * H, I)), arg((G * H, P))
        b_ih, b_hh, h0 = arg((G * H,), True), arg((G * H,), True), arg((B, P), True)
        r = pick.random()
        lengths = (None if r < 0.4 else rng.integers(0, T + 1, B) if r < 0.9 else
                   pick.choice([rng.integers(-2, T + 3, B), rng.random(B),
                                rng.integers(0, T + 1, B + 1), [T] * B, np.array(True)]))
        if huge and lengths is not None and np.size(lengths) != B:
            lengths = None
        kw = dict(lengths=lengths, reverse=pick.random() < 0.5, training=pick.random() < 0.7)
        try:
            if cell.startswith("lstm"):
                c0 = arg((B, H), True)
                w_hr = arg((P, H)) if cell == "lstmp" else None
                y, hn, cn, saved = fusedrnn.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0,
                                                         w_hr=w_hr, **kw)
                if saved is not None:
                    dy = arg(y.shape, True)
                    for _ in range(pick.choice([1, 2])):  # a saved object may be reused
                        fusedrnn.lstm_backward(saved, dy, arg(hn.shape, True), arg(cn.shape, True))
            else:
                y, hn, saved = fusedrnn.gru_forward(
                    x, w_ih, w_hh, b_ih, b_hh, h0,
                    linear_before_reset=cell == "gru", **kw)
                if saved is not None:
                    fusedrnn.gru_backward(saved, arg(y.shape, True), arg(hn.shape, True))
                    if pick.random() < 0.1:
                        fusedrnn.lstm_backward(saved, y)  # the wrong kind of saved object
            counts["ok"] = counts.get("ok", 0) + 1
        except (TypeError, ValueError) as e:
            counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
            if not str(e).startswith(tuple(n + ":" for n in NAMES)):
                unnamed.append(f"{type(e).__name__}: {e}")
    print(json.dumps({"counts": counts, "unnamed": unnamed[:20]}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
