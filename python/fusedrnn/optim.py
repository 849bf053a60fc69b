"""A small Adam optimiser and gradient clipping for training the modules without a framework.

Parameters and gradients are mappings from names to NumPy arrays: a module's
``state_dict()`` (whose values are the parameters themselves) and its ``.grads`` after
``backward`` share keys, so::

    lstm = fusedrnn.LSTM(1, 32)
    opt = fusedrnn.optim.Adam(lstm.state_dict(), lr=1e-2)
    ...
    lstm.backward(dy)
    fusedrnn.optim.clip_grad_norm_(lstm.grads, 1.0)
    opt.step(lstm.grads)

To train several pieces together, merge them under distinct names, e.g.
``{**{"rnn." + k: v for k, v in lstm.state_dict().items()}, "head.weight": w}``, and pass
gradients under the same names.
"""

import numpy as np

__all__ = ["Adam", "clip_grad_norm_"]


class Adam:
    """Adam (Kingma & Ba, 2015) with PyTorch's defaults and update rule (``torch.optim.Adam``).

    ``params``: mapping name -> float ndarray, updated in place by ``step``. ``weight_decay``
    adds ``weight_decay * p`` to each gradient (L2, as torch.optim.Adam, not AdamW).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        params = dict(params)
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(f"params[{name!r}]: expected a float NumPy array (updated in "
                                f"place), got {type(p).__name__}"
                                f"{'' if not isinstance(p, np.ndarray) else ' of ' + str(p.dtype)}")
            if not p.flags.writeable:
                raise ValueError(f"params[{name!r}]: the array is read-only")
        if not lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        if not eps >= 0 or not weight_decay >= 0:
            raise ValueError(f"eps, weight_decay: expected >= 0, got {eps!r}, {weight_decay!r}")
        self.params = params
        self.lr, self.betas, self.eps, self.weight_decay = lr, (b1, b2), eps, weight_decay
        self.steps = 0
        self._m = {k: np.zeros_like(p) for k, p in params.items()}
        self._v = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads):
        """One update from ``grads`` (mapping name -> array); names without a gradient (or
        with None) are left unchanged; unknown names are a KeyError."""
        unknown = [k for k in grads if k not in self.params]
        if unknown:
            raise KeyError(f"grads: names not among the parameters: {', '.join(map(str, unknown))}")
        self.steps += 1
        b1, b2 = self.betas
        c1 = 1.0 - b1 ** self.steps
        c2 = 1.0 - b2 ** self.steps
        for name, g in grads.items():
            if g is None:
                continue
            p, m, v = self.params[name], self._m[name], self._v[name]
            g = np.asarray(g, dtype=p.dtype)
            if g.shape != p.shape:
                raise ValueError(f"grads[{name!r}]: expected shape {p.shape}, got {g.shape}")
            if self.weight_decay:
                g = g + self.weight_decay * p
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            denom = np.sqrt(v / c2)
            denom += self.eps
            p -= (self.lr / c1) * m / denom


def clip_grad_norm_(grads, max_norm):
    """Scale every gradient in ``grads`` (mapping name -> array) in place so that their
    joint L2 norm is at most ``max_norm``; returns the norm before clipping (as
    ``torch.nn.utils.clip_grad_norm_``)."""
    arrays = [g for g in grads.values() if g is not None]
    total = float(np.sqrt(sum(float(np.vdot(g, g)) for g in arrays)))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in arrays:
            g *= scale
    return total
