"""PyTorch-compatible multi-layer LSTM and GRU modules over the fused kernels.

``LSTM`` and ``GRU`` take ``torch.nn.LSTM``'s / ``torch.nn.GRU``'s constructor arguments,
initialise their weights as PyTorch does (uniform in +-1/sqrt(hidden_size)), and use its
``state_dict`` keys and shapes, so a trained PyTorch model's weights load unchanged and give
the same numbers. There is no autograd: a training-mode forward records what the kernels
need, and ``backward(dy, ...)`` returns the gradients of the input and of the initial states
and stores the parameter gradients in ``.grads`` (keyed like ``state_dict()``).

Shapes (L layers, D = 2 if bidirectional else 1, H hidden size, H_out = proj_size or H):

    x       (T, B, I), or (B, T, I) with batch_first, or (T, I) unbatched
    y       (T, B, D*H_out), or (B, T, D*H_out) with batch_first, or (T, D*H_out)
    h0, hn  (L*D, B, H_out), or (L*D, H_out) unbatched; index l*D + d (d=1: reverse)
    c0, cn  (L*D, B, H) (LSTM only)

``lengths`` (B,) gives PyTorch's packed-sequence semantics without packing: sequence b runs
for its first lengths[b] steps in every layer and both directions; y is 0 after them and
hn, cn are the states after its last valid step.

How the modules stay fast: every layer and direction is one kernel call (no Python loop
over time); the two directions of a bidirectional layer run at the same time on two threads
(the kernels release the GIL); ``batch_first`` input and output are transposed views, not
copies (the kernel makes its one contiguous copy of a non-contiguous input, and a
bidirectional layer makes that copy once for both directions). In eval mode,
``pack_weights()`` packs every layer's weights once for the forwards that follow (a
decoder's steps), as ``fusedrnn.pack_weights`` does for one layer.
"""

import collections
import concurrent.futures
import operator
import threading
import warnings

import numpy as np

from . import functional as F
from . import runtime

__all__ = ["LSTM", "GRU", "LoadResult"]

LoadResult = collections.namedtuple("LoadResult", "missing_keys unexpected_keys")
LoadResult.__doc__ = "What load_state_dict(strict=False) skipped, as PyTorch returns it."

# On two (or three) threads, the two directions of a bidirectional layer run concurrently, one
# thread each (a per-call cap; nothing process-wide changes), instead of one after the other
# with two threads each: the per-step work of one direction is too small to split well, so
# the second core does more good on the other direction. Measured on this project's 2-core
# machine at T=100, B=16, I=H=256, float32, median of runs of consecutive calls: LSTM eval
# forward 28.9 -> 24.5 ms, train forward+backward 77.6 -> 66.9 ms; GRU 21.0 -> 17.6 and
# 63.7 -> 56.0 ms (1.14-1.20x). With four or more threads the directions run one after the
# other, each on all of them: the kernels' thread team runs one multi-threaded call at a
# time, so two concurrent multi-threaded calls would only queue. Tests flip this flag to
# check that both paths agree.
_CONCURRENT_DIRECTIONS = True
_pool = None
_lock = threading.Lock()


def _executor():
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=2, thread_name_prefix="fusedrnn-direction")
        return _pool


def _both_directions(fn, forward_args, reverse_args):
    """``fn(*forward_args), fn(*reverse_args)``: concurrently on one thread each, the reverse
    one on a worker thread, when the kernels have two or three threads; else one after the
    other on all of them."""
    if not _CONCURRENT_DIRECTIONS or runtime.get_num_threads() not in (2, 3):
        return fn(*forward_args), fn(*reverse_args)
    future = _executor().submit(fn, *reverse_args, threads=1)
    try:
        first = fn(*forward_args, threads=1)
    except BaseException:
        concurrent.futures.wait([future])  # never leave a kernel running on our arrays
        raise
    return first, future.result()


def _positive_int(name, value, minimum=1):
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}") from None
    if isinstance(value, bool) or v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return v


def _canonical(dtype):
    """NumPy's own instance of ``dtype``. The kernels recognise float32/float64 by identity,
    and equal dtype objects made elsewhere (unpickled ones, say) are other instances."""
    return np.dtype(np.dtype(dtype).type)


def _to_numpy(value):
    """Any array-like as a NumPy array; torch tensors (any device, with grad) included."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        t = value.detach().cpu()
        try:
            return t.numpy()
        except TypeError:  # bfloat16 and other dtypes NumPy lacks
            return t.double().numpy()
    return np.asarray(value)


class _RNNBase:
    """What LSTM and GRU share: parameters, state_dict, modes, the layer/direction loops."""

    _gates = 0  # G: 4 for the LSTM, 3 for the GRU
    _has_cell = False

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, *, linear_before_reset=True,
                 dtype=np.float32, seed=None):
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.proj_size = _positive_int("proj_size", proj_size, minimum=0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size: expected 0 or a value smaller than hidden_size="
                             f"{self.hidden_size}, got {self.proj_size}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.number)) \
                or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout!r}")
        if dropout > 0 and self.num_layers == 1:
            warnings.warn(f"dropout={dropout} has no effect with num_layers=1: dropout is "
                          f"applied between layers only", stacklevel=3)
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
        if dt not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {dt}")
        self.dtype = _canonical(dt)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.linear_before_reset = bool(linear_before_reset)
        self.training = True
        self.grads = None
        self._rng = np.random.default_rng(seed)
        self._tape = None  # what backward needs; None after an eval forward or none at all
        self._tape_error = "no forward has run yet"
        self._packs = {}  # (layer, direction) -> PackedWeights: pack_weights(), eval mode only
        self._params = self._init_params()

    # ---- shapes and names -------------------------------------------------------------

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def _h_out(self):
        return self.proj_size or self.hidden_size

    def _layer_input_size(self, layer):
        return self.input_size if layer == 0 else self._h_out * self.num_directions

    def _param_shapes(self):
        """(name, shape) in PyTorch's order: per layer, per direction, w_ih w_hh b_ih b_hh w_hr."""
        G, H, P = self._gates, self.hidden_size, self.proj_size
        out = []
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                out.append(("weight_ih" + sfx, (G * H, self._layer_input_size(layer))))
                out.append(("weight_hh" + sfx, (G * H, self._h_out)))
                if self.bias:
                    out.append(("bias_ih" + sfx, (G * H,)))
                    out.append(("bias_hh" + sfx, (G * H,)))
                if P:
                    out.append(("weight_hr" + sfx, (P, H)))
        return out

    def _init_params(self):
        k = 1.0 / np.sqrt(self.hidden_size)
        return collections.OrderedDict(
            (name, self._rng.uniform(-k, k, shape).astype(self.dtype))
            for name, shape in self._param_shapes())

    def _layer_params(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        p = self._params
        return (p["weight_ih" + sfx], p["weight_hh" + sfx], p.get("bias_ih" + sfx),
                p.get("bias_hh" + sfx), p.get("weight_hr" + sfx))

    # ---- copying, pickling -------------------------------------------------------------

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_tape"] = None  # the kernels' records cannot be copied; backward needs a forward
        state["_tape_error"] = "no forward has run since this module was copied or unpickled"
        state["_packs"] = {}  # packed weights are not copied: pack the copy's own again
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_packs", {})
        dt = _canonical(self.dtype)
        self.__dict__["dtype"] = dt
        self.__dict__["_params"] = collections.OrderedDict(
            (k, v if v.dtype is dt else v.view(dt)) for k, v in self._params.items())

    # ---- parameters, PyTorch style ----------------------------------------------------

    def __getattr__(self, name):
        # Only called when normal lookup fails: lstm.weight_ih_l0 etc. as in PyTorch.
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            self.load_state_dict({name: value}, strict=False)
        else:
            object.__setattr__(self, name, value)

    def state_dict(self):
        """The parameters by PyTorch's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...).

        As in PyTorch, the values are the parameters themselves, not copies: an in-place
        update of a value (an optimiser step) updates the module; copy them for a snapshot.
        """
        return collections.OrderedDict(self._params)

    def named_parameters(self):
        """(name, array) pairs, in state_dict order."""
        return iter(self._params.items())

    def parameters(self):
        """The parameter arrays, in state_dict order."""
        return iter(self._params.values())

    def num_parameters(self):
        """The number of scalar parameters."""
        return sum(a.size for a in self._params.values())

    def load_state_dict(self, state_dict, strict=True):
        """Copy parameters in from a mapping name -> array-like (torch tensors included).

        Values are cast to the module's dtype and copied into the existing arrays (so
        references to them, an optimiser's for instance, stay valid). Every problem is
        reported at once in one ValueError, before anything is changed: missing and
        unexpected keys (unless ``strict=False``) and wrong shapes. Returns
        ``LoadResult(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"state_dict: expected a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        missing = [k for k in self._params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in self._params]
        problems, values = [], {}
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(map(str, unexpected)))
        for name, value in state_dict.items():
            if name not in self._params:
                continue
            try:
                a = _to_numpy(value)
            except Exception as e:  # noqa: BLE001 - reported with its key
                problems.append(f"{name}: cannot be read as an array ({e})")
                continue
            expected = self._params[name].shape
            if a.dtype.kind not in "fiub":
                problems.append(f"{name}: expected real numbers, got dtype {a.dtype}")
            elif a.shape != expected:
                problems.append(f"{name}: expected shape {expected}, got {a.shape}")
            else:
                values[name] = a
        if problems:
            raise ValueError(f"load_state_dict for {self!r}:\n  " + "\n  ".join(problems))
        for name, a in values.items():
            np.copyto(self._params[name], a, casting="unsafe")
        if values:
            self._packs = {}  # packed from the values these replaced
        return LoadResult(missing, unexpected)

    def __call__(self, x, hx=None, lengths=None):
        """Same as ``forward``."""
        return self.forward(x, hx, lengths)

    # ---- modes ------------------------------------------------------------------------

    def train(self, mode=True):
        """Training mode (the default): forward records what backward needs; dropout is on.
        It drops the weights packed by pack_weights()."""
        self.training = bool(mode)
        if self.training:
            self._packs = {}
        return self

    def eval(self):
        """Inference mode: forward records nothing (faster) and dropout is off."""
        return self.train(False)

    def pack_weights(self):
        """Pack every layer's weights once for the eval-mode forwards that follow.

        A forward packs each layer's ``weight_ih`` and ``weight_hh`` into the kernels' layout
        before it multiplies by them (a read and a write of both); a module called again and
        again on the same weights (a decoder's steps) can do that once (``fusedrnn.pack_weights``,
        which says what it gains). Eval mode only (a RuntimeError in training mode); ``train()``
        drops the packed weights, and so do ``load_state_dict`` and assigning a parameter. They
        are a snapshot: after changing a parameter in place any other way, call this again.
        Returns the module.
        """
        if self.training:
            raise RuntimeError("pack_weights: for inference; call eval() first (train() "
                               "would drop the packed weights)")
        self._packs = {}
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                w_ih, w_hh, _, _, w_hr = self._layer_params(layer, d)
                self._packs[(layer, d)] = F.pack_weights(
                    w_ih, w_hh, w_hr, linear_before_reset=self.linear_before_reset)
        return self

    def __repr__(self):
        s = f"{type(self).__name__}({self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self._gates == 3 and not self.linear_before_reset:
            s += ", linear_before_reset=False"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s + ")"

    # ---- argument checks --------------------------------------------------------------

    def _array(self, name, value):
        """``value`` as an array of the module's dtype: a NumPy array must already have it
        (TypeError otherwise, as the kernels); other array-likes are converted."""
        if isinstance(value, np.ndarray):
            if value.dtype != self.dtype:
                raise TypeError(f"{name}: expected dtype {self.dtype} (the module's), got "
                                f"{value.dtype}")
            return value if value.dtype is self.dtype else value.view(self.dtype)
        return np.asarray(_to_numpy(value), dtype=self.dtype)

    def _input(self, x):
        """x -> (time-major (T, B, I) view, batched)."""
        x = self._array("x", x)
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if x.ndim not in (2, 3):
            raise ValueError(f"x: expected a 3-D array {layout} or a 2-D unbatched (T, I), "
                             f"got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"x: expected input size I={self.input_size} in the last "
                             f"dimension, got shape {x.shape}")
        if x.ndim == 2:
            return x[:, None, :], False
        return (x.transpose(1, 0, 2) if self.batch_first else x), True

    def _state(self, name, value, batched, B, size):
        """An initial state or state gradient as (L*D, B, size), or None."""
        if value is None:
            return None
        a = self._array(name, value)
        LD = self.num_layers * self.num_directions
        if batched:
            expected = (LD, B, size)
            form = f"(L*D={LD}, B={B}, {size})"
        else:
            expected = (LD, size)
            form = f"(L*D={LD}, {size}) (x is unbatched)"
        if a.shape != expected:
            raise ValueError(f"{name}: expected shape {form}, got {a.shape}")
        return a if batched else a[:, None, :]

    def _output(self, name, value, batched, T, B, size):
        """dy in the layout of y, as a time-major (T, B, size) array."""
        a = self._array(name, value)
        if not batched:
            expected = (T, size)
        elif self.batch_first:
            expected = (B, T, size)
        else:
            expected = (T, B, size)
        if a.shape != expected:
            raise ValueError(f"{name}: expected shape {expected} (that of y), got {a.shape}")
        if not batched:
            return a[:, None, :]
        return a.transpose(1, 0, 2) if self.batch_first else a

    @staticmethod
    def _lengths(lengths, batched):
        if lengths is None:
            return None
        a = _to_numpy(lengths)
        if not batched and a.ndim == 0:
            a = a.reshape(1)
        return a

    def _user_layout(self, a, batched):
        """A time-major (T, B, .) array in the caller's layout (a view)."""
        if not batched:
            return a[:, 0, :]
        return a.transpose(1, 0, 2) if self.batch_first else a

    @staticmethod
    def _states_out(states, batched):
        out = np.stack(states)
        return out if batched else out[:, 0, :]

    # ---- the layer stack --------------------------------------------------------------

    def _run(self, x, h0, c0, lengths):
        """Forward through every layer; returns time-major y and the lists of hn (and cn)."""
        self._tape = None  # free the previous forward's record before making a new one
        training = self.training
        D, H_out = self.num_directions, self._h_out
        T, B = x.shape[0], x.shape[1]
        hn, cn, layers, masks = [], [], [], []
        inp = x
        if D == 2 and not inp.flags.c_contiguous:
            inp = np.ascontiguousarray(inp)  # one copy for both directions, not one each
        for layer in range(self.num_layers):
            if layer > 0 and training and self.dropout > 0:
                mask = self._dropout_mask(inp.shape)
                inp *= mask  # our own array: the previous layer's output, saved by nobody
                masks.append(mask)
            else:
                masks.append(None)
            args = []
            for d in range(D):
                i = layer * D + d
                args.append((inp, self._layer_params(layer, d),
                             None if h0 is None else h0[i], None if c0 is None else c0[i],
                             lengths, bool(d), training,
                             None if training else self._packs.get((layer, d))))
            if D == 2:
                results = _both_directions(self._kernel_forward, args[0], args[1])
            else:
                results = (self._kernel_forward(*args[0]),)
            for y_d, hn_d, cn_d, _ in results:
                hn.append(hn_d)
                cn.append(cn_d)
            layers.append([r[3] for r in results])
            if D == 1:
                inp = results[0][0]
            else:
                inp = np.empty((T, B, D * H_out), self.dtype)
                inp[..., :H_out] = results[0][0]
                inp[..., H_out:] = results[1][0]
        if training:
            self._tape = dict(layers=layers, masks=masks)
        else:
            self._tape_error = ("the last forward ran in eval mode, which records nothing "
                                "for backward; call .train() before the forward")
        return inp, hn, cn

    def _dropout_mask(self, shape):
        p = self.dropout
        if p >= 1:
            return np.zeros(shape, self.dtype)
        keep = self._rng.random(shape) >= p
        return keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - p))

    def _run_backward(self, dy, dh, dc):
        """Backward through every layer; returns time-major dx and the lists of dh0 (dc0)."""
        if self._tape is None:
            raise RuntimeError(f"backward: {self._tape_error}")
        tape = self._tape
        D, H_out = self.num_directions, self._h_out
        grads = {}
        dh0 = [None] * (self.num_layers * D)
        dc0 = [None] * (self.num_layers * D)
        g_out = dy
        for layer in reversed(range(self.num_layers)):
            args = []
            for d in range(D):
                i = layer * D + d
                dy_d = g_out if D == 1 else g_out[..., d * H_out:(d + 1) * H_out]
                args.append((tape["layers"][layer][d], dy_d, None if dh is None else dh[i],
                             None if dc is None else dc[i]))
            if D == 2:
                results = _both_directions(self._kernel_backward, args[0], args[1])
            else:
                results = (self._kernel_backward(*args[0]),)
            for d, g in enumerate(results):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                dh0[layer * D + d] = g.dh0
                if self._has_cell:
                    dc0[layer * D + d] = g.dc0
                grads["weight_ih" + sfx] = g.dw_ih
                grads["weight_hh" + sfx] = g.dw_hh
                if self.bias:
                    grads["bias_ih" + sfx] = g.db_ih
                    grads["bias_hh" + sfx] = g.db_hh
                if self.proj_size:
                    grads["weight_hr" + sfx] = g.dw_hr
            g_out = results[0].dx
            if D == 2:
                g_out += results[1].dx  # both directions read the same input
            mask = tape["masks"][layer]
            if mask is not None:
                g_out *= mask
        self.grads = collections.OrderedDict((k, grads[k]) for k in self._params)
        return g_out, dh0, dc0


class LSTM(_RNNBase):
    """A multi-layer LSTM with torch.nn.LSTM's arguments, weights, and numbers.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0, *, dtype=np.float32, seed=None)``

    - ``proj_size > 0`` adds PyTorch's output projection (``weight_hr_l{k}``, (P, H)):
      h and y then have P columns while c keeps H.
    - ``dropout`` zeroes the outputs of every layer but the last with that probability
      (scaling the rest by 1/(1-p)), in training mode only.
    - ``seed`` seeds the initialisation and the dropout masks (NumPy's default_rng): two
      modules made with the same seed start and train identically.
    - ``dtype`` float32 or float64; inputs must have it (array-likes that are not NumPy
      arrays, torch tensors for instance, are converted).

    Call ``lstm(x, hx=None, lengths=None)`` -> ``y, (hn, cn)``, with ``hx = (h0, c0)``
    (either may be None for zeros). In training mode (the default) the forward records what
    ``backward(dy, dhx=None)`` needs; ``eval()`` turns that off. The record refers to ``x``
    and the parameters without copying them: change neither before backward.
    """

    _gates = 4
    _has_cell = True

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, *, dtype=np.float32,
                 seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, dtype=dtype, seed=seed)

    @staticmethod
    def _kernel_forward(x, params, h0, c0, lengths, reverse, training, packed, threads=0):
        w_ih, w_hh, b_ih, b_hh, w_hr = params
        return F.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr=w_hr, lengths=lengths,
                              reverse=reverse, training=training, packed=packed,
                              _threads=threads)

    @staticmethod
    def _kernel_backward(saved, dy, dhn, dcn, threads=0):
        return F.lstm_backward(saved, dy, dhn, dcn, _threads=threads)

    def forward(self, x, hx=None, lengths=None):
        """Run the LSTM: returns ``y, (hn, cn)``.

        x (T, B, I), (B, T, I) with batch_first, or (T, I) unbatched; hx = (h0, c0) with h0
        (L*D, B, H_out) and c0 (L*D, B, H) ((L*D, .) unbatched), either None for zeros;
        lengths (B,) integers in [0, T] for variable-length sequences (packed semantics).
        """
        x, batched = self._input(x)
        T, B = x.shape[0], x.shape[1]
        h0, c0 = self._split_hx(hx, "hx")
        h0 = self._state("h0", h0, batched, B, self._h_out)
        c0 = self._state("c0", c0, batched, B, self.hidden_size)
        y, hn, cn = self._run(x, h0, c0, self._lengths(lengths, batched))
        if self._tape is not None:
            self._tape.update(T=T, B=B, batched=batched)
        return (self._user_layout(y, batched),
                (self._states_out(hn, batched), self._states_out(cn, batched)))


    @staticmethod
    def _split_hx(hx, name):
        if hx is None:
            return None, None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{name}: expected a pair ({'h0, c0' if name == 'hx' else 'dhn, dcn'}) "
                            f"or None, got {type(hx).__name__}")
        return hx

    def backward(self, dy, dhx=None):
        """Gradients of the last (training-mode) forward.

        dy: gradient of y, in y's shape (None for zeros); dhx = (dhn, dcn): gradients of the
        final states (pair or None; either may be None). Returns ``dx, (dh0, dc0)``, the
        gradients of x and of the initial states (in their shapes; also when hx was None),
        and sets ``.grads`` to the parameter gradients, keyed like state_dict().
        """
        if self._tape is None:
            raise RuntimeError(f"backward: {self._tape_error}")
        t = self._tape
        T, B, batched = t["T"], t["B"], t["batched"]
        D = self.num_directions
        if dy is not None:
            dy = self._output("dy", dy, batched, T, B, D * self._h_out)
        else:
            dy = np.zeros((T, B, D * self._h_out), self.dtype)
        dhn, dcn = self._split_hx(dhx, "dhx")
        dhn = self._state("dhn", dhn, batched, B, self._h_out)
        dcn = self._state("dcn", dcn, batched, B, self.hidden_size)
        dx, dh0, dc0 = self._run_backward(dy, dhn, dcn)
        return (self._user_layout(dx, batched),
                (self._states_out(dh0, batched), self._states_out(dc0, batched)))


class GRU(_RNNBase):
    """A multi-layer GRU with torch.nn.GRU's arguments, weights, and numbers.

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, *, linear_before_reset=True, dtype=np.float32, seed=None)``

    - ``linear_before_reset=True`` is PyTorch's (and cuDNN's) GRU,
      n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); False is the original GRU of Cho et al.
      (ONNX's default, Keras' reset_after=False), n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
    - ``dropout``, ``seed``, ``dtype`` as for LSTM.

    Call ``gru(x, hx=None, lengths=None)`` -> ``y, hn`` with h0 (L*D, B, H); then
    ``backward(dy, dhn=None)`` -> ``dx, dh0`` and ``.grads``. The record of a training
    forward refers to ``x`` and the parameters without copying them.
    """

    _gates = 3
    _has_cell = False

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, linear_before_reset=True,
                 dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, linear_before_reset=linear_before_reset,
                         dtype=dtype, seed=seed)

    def _kernel_forward(self, x, params, h0, c0, lengths, reverse, training, packed,
                        threads=0):
        w_ih, w_hh, b_ih, b_hh, _ = params
        y, hn, saved = F.gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths=lengths,
                                     reverse=reverse,
                                     linear_before_reset=self.linear_before_reset,
                                     training=training, packed=packed, _threads=threads)
        return y, hn, None, saved

    @staticmethod
    def _kernel_backward(saved, dy, dhn, dcn, threads=0):
        return F.gru_backward(saved, dy, dhn, _threads=threads)

    def forward(self, x, hx=None, lengths=None):
        """Run the GRU: returns ``y, hn``.

        x (T, B, I), (B, T, I) with batch_first, or (T, I) unbatched; hx: h0 (L*D, B, H)
        ((L*D, H) unbatched) or None for zeros; lengths (B,) integers in [0, T].
        """
        x, batched = self._input(x)
        T, B = x.shape[0], x.shape[1]
        h0 = self._state("hx", hx, batched, B, self.hidden_size)
        y, hn, _ = self._run(x, h0, None, self._lengths(lengths, batched))
        if self._tape is not None:
            self._tape.update(T=T, B=B, batched=batched)
        return self._user_layout(y, batched), self._states_out(hn, batched)


    def backward(self, dy, dhn=None):
        """Gradients of the last (training-mode) forward.

        dy: gradient of y in y's shape (None for zeros); dhn: gradient of hn (None for
        zeros). Returns ``dx, dh0`` and sets ``.grads`` (keyed like state_dict()).
        """
        if self._tape is None:
            raise RuntimeError(f"backward: {self._tape_error}")
        t = self._tape
        T, B, batched = t["T"], t["B"], t["batched"]
        if dy is not None:
            dy = self._output("dy", dy, batched, T, B, self.num_directions * self.hidden_size)
        else:
            dy = np.zeros((T, B, self.num_directions * self.hidden_size), self.dtype)
        dhn = self._state("dhn", dhn, batched, B, self.hidden_size)
        dx, dh0, _ = self._run_backward(dy, dhn, None)
        return self._user_layout(dx, batched), self._states_out(dh0, batched)
