"""The functional API: one layer, one direction, NumPy arrays in and out.

Shapes (time-major, PyTorch's conventions): x (T, B, I); states (B, H); y (T, B, H);
w_ih (G*H, I), w_hh (G*H, H), biases (G*H,); gates i, f, g, o for the LSTM (G=4) and
r, z, n for the GRU (G=3). An LSTM with projection takes w_hr (P, H); then w_hh is (4H, P),
h and y have P columns and c keeps H.

A training forward returns an opaque ``saved`` object that the matching backward consumes; it
refers to the inputs without copying them, so leave them unchanged until backward has run.
Arrays of one call share one dtype (float32 or float64); other array-likes are converted
with ``numpy.asarray``. Missing biases and initial states are zeros; a missing upstream
gradient counts as zeros. The GIL is released while the kernels run.

GPU arrays (CuPy, PyTorch CUDA tensors, ``__cuda_array_interface__`` / CUDA DLPack objects)
run on the CUDA backend (``fusedrnn.cuda``) and come back as arrays of the same library on the
same device; NumPy input runs on the CPU. One call's arrays are all on the host or all on one
GPU (``lengths`` may be either).

``pack_weights(w_ih, w_hh[, w_hr])`` packs a layer's weights once for many forward calls
(``packed=``).

(``_threads``, private: a per-call cap on the kernels' threads, 0 meaning set_num_threads';
the modules use it to run the two directions of a layer side by side.)
"""

import contextlib
from collections import namedtuple

import numpy as np

from . import _core, cuda

LstmGrads = namedtuple("LstmGrads", "dx dh0 dc0 dw_ih dw_hh db_ih db_hh dw_hr")
LstmGrads.__doc__ = "Gradients of lstm_forward's inputs (db_* None without that bias, dw_hr None without projection)."
GruGrads = namedtuple("GruGrads", "dx dh0 dw_ih dw_hh db_ih db_hh")
GruGrads.__doc__ = "Gradients of gru_forward's inputs (db_* None without that bias)."
LstmCellGrads = namedtuple("LstmCellGrads", "dx dh dc dw_ih dw_hh db_ih db_hh")
LstmCellGrads.__doc__ = "Gradients of lstm_cell's inputs."
GruCellGrads = namedtuple("GruCellGrads", "dx dh dw_ih dw_hh db_ih db_hh")
GruCellGrads.__doc__ = "Gradients of gru_cell's inputs."


def _array(a):
    if a is None or isinstance(a, np.ndarray) or cuda.is_device_array(a):
        return a
    return np.asarray(a)


def _arrays(*args):
    return [_array(a) for a in args]


def _check_out(out, names, inputs):
    """out: None, or a tuple of arrays to write the outputs into. They may not overlap the
    inputs or each other (the kernels read inputs while they write outputs)."""
    if out is None:
        return None
    if not isinstance(out, tuple) or len(out) != len(names):
        raise TypeError(f"out: expected None or a tuple of {len(names)} arrays "
                        f"({', '.join(names)}), got {type(out).__name__}")
    for i, (name, o) in enumerate(zip(names, out)):
        if not isinstance(o, np.ndarray):
            raise TypeError(f"out[{i}] ({name}): expected a numpy array, got {type(o).__name__}")
        others = [a for a in inputs if isinstance(a, np.ndarray)] + list(out[i + 1:])
        if any(np.may_share_memory(o, a) for a in others):
            raise ValueError(f"out[{i}] ({name}): overlaps an input or another output")
    return out


def _check_saved(saved, kinds, forward):
    if not isinstance(saved, kinds):
        hint = " (was the forward run with training=True?)" if saved is None else ""
        raise TypeError(
            f"saved: expected the saved object of {forward}(..., training=True), "
            f"got {type(saved).__name__}{hint}"
        )


def pack_weights(w_ih, w_hh, w_hr=None, *, linear_before_reset=True):
    """Pack a layer's weights once, for many forward calls with ``packed=``.

    Every forward packs its weights into its kernels' layout (a read and a write of each)
    before it multiplies by them. A caller that runs the same weights again and again (a
    decoder's steps, a server's requests) can pack them once and pass the result as ``packed``
    to lstm_forward, gru_forward, lstm_cell or gru_cell, with the same weight arrays. For an
    LSTM, w_hh (4*H, H), or with a projection w_hh (4*H, P) and ``w_hr`` (P, H); for a GRU,
    w_hh (3*H, H), and ``linear_before_reset`` as the calls will have it (the original GRU
    splits w_hh otherwise). float32 or float64, as the weights; CPU arrays.

    The forward's matrix products then read the packed copy: leave the weights unchanged while
    it is in use (after changing them, pack them again). A call with other arrays than
    ``packed.w_ih``, ``packed.w_hh`` (and ``packed.w_hr``), the arrays packed (C-contiguous
    copies of the given ones when those were not), is a ValueError. The results are those of
    the call without ``packed``, except for calls of up to 32 rows (T * B; 64 with 8 MiB of
    weights or more), which may differ in the last bits. The backward does not use it.
    """
    if cuda.any_on_device(w_ih, w_hh, w_hr):
        raise TypeError("pack_weights: packs CPU (NumPy) weights only")
    return _core.pack_weights(*_arrays(w_ih, w_hh, w_hr), bool(linear_before_reset))


def _check_packed_on_cpu(packed):
    if packed is not None:
        raise TypeError("packed: for CPU (NumPy) calls only, got GPU arrays")


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None, *, w_hr=None,
                 lengths=None, reverse=False, training=False, out=None, packed=None,
                 _threads=0):
    """Run an LSTM layer over a sequence.

    Returns ``(y, hn, cn, saved)``: y (T, B, P), hn (B, P), cn (B, H), and ``saved`` for
    lstm_backward when ``training`` (else None). ``lengths`` (B,) integers in [0, T] give
    PyTorch's packed-sequence semantics: y is 0 past each sequence's length and hn, cn are
    the states after its last valid step. ``reverse`` runs each sequence from its last valid
    step back to t = 0 (the backward direction of a bidirectional layer). ``out=(y, hn, cn)``:
    C-contiguous arrays of the right shape and dtype to write the outputs into (returned).
    ``packed``: ``pack_weights(w_ih, w_hh, w_hr)`` of these weights, packed once for many
    calls.
    """
    if cuda.any_on_device(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr):
        _check_packed_on_cpu(packed)
        return cuda.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr=w_hr, lengths=lengths,
                                 reverse=reverse, training=training, out=out)
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, lengths = inputs = _arrays(
        x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, lengths)
    out = _check_out(out, ("y", "hn", "cn"), inputs)
    return _core.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, lengths, bool(reverse),
                              bool(training), _threads, out, packed)


def lstm_backward(saved, dy, dhn=None, dcn=None, *, _threads=0):
    """Gradients of an LSTM layer, from the ``saved`` of a training lstm_forward.

    dy (T, B, P) is the gradient of y (entries past a sequence's length are ignored), dhn
    (B, P) and dcn (B, H) those of the final states. Returns LstmGrads.
    """
    _check_saved(saved, (_core.LstmSaved, cuda.LstmSaved), "lstm_forward")
    if isinstance(saved, cuda.LstmSaved):
        return LstmGrads(*cuda.lstm_backward(saved, dy, dhn, dcn))
    return LstmGrads(*_core.lstm_backward(saved, *_arrays(dy, dhn, dcn), _threads))


def gru_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, lengths=None, reverse=False,
                linear_before_reset=True, training=False, out=None, packed=None, _threads=0):
    """Run a GRU layer over a sequence.

    Returns ``(y, hn, saved)``. ``linear_before_reset=True`` is PyTorch's and cuDNN's GRU,
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); False is the original GRU (ONNX's default),
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn). ``lengths`` and ``reverse`` as for
    lstm_forward; ``out=(y, hn)`` and ``packed`` likewise.
    """
    if cuda.any_on_device(x, w_ih, w_hh, b_ih, b_hh, h0):
        _check_packed_on_cpu(packed)
        return cuda.gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths=lengths, reverse=reverse,
                                linear_before_reset=linear_before_reset, training=training,
                                out=out)
    x, w_ih, w_hh, b_ih, b_hh, h0, lengths = inputs = _arrays(
        x, w_ih, w_hh, b_ih, b_hh, h0, lengths)
    out = _check_out(out, ("y", "hn"), inputs)
    return _core.gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, bool(reverse),
                             bool(linear_before_reset), bool(training), _threads, out, packed)


def gru_backward(saved, dy, dhn=None, *, _threads=0):
    """Gradients of a GRU layer from the ``saved`` of a training gru_forward: GruGrads."""
    _check_saved(saved, (_core.GruSaved, cuda.GruSaved), "gru_forward")
    if isinstance(saved, cuda.GruSaved):
        return GruGrads(*cuda.gru_backward(saved, dy, dhn))
    return GruGrads(*_core.gru_backward(saved, *_arrays(dy, dhn), _threads))


# Cells are sequences of one step; errors keep the names the caller used.
@contextlib.contextmanager
def _renamed(names):
    try:
        yield
    except (TypeError, ValueError) as e:
        message = str(e)
        for inner, outer in names.items():
            if message.startswith(inner + ":"):
                raise type(e)(outer + message[len(inner):]) from None
        raise


def _one_step(name, a, shape=None):
    """a (B, N) as a sequence of one step, after checking it is 2-D (and `shape`, when given:
    the cell's own message, rather than the sequence kernel's 3-D one)."""
    a = _array(a)
    form = "(B, I)" if name == "x" else "(B, H)"
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array {form}, got shape {tuple(a.shape)}")
    if shape is not None and tuple(a.shape) != shape:
        raise ValueError(f"{name}: expected shape (B={shape[0]}, H={shape[1]}), got "
                         f"{tuple(a.shape)}")
    return a[None]


def _cell_output_shape(saved):
    return (saved.batch, saved.output_size)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, training=False, packed=None):
    """One LSTM step, as torch.nn.LSTMCell: x (B, I), h and c (B, H).

    Returns ``(h1, c1)``, or ``(h1, c1, saved)`` when ``training``. ``packed``: see
    pack_weights (a decoder's steps run the same weights again and again).
    """
    with _renamed({"h0": "h", "c0": "c"}):
        y, h1, c1, saved = lstm_forward(_one_step("x", x), w_ih, w_hh, b_ih, b_hh, h, c,
                                        training=training, packed=packed)
    return (h1, c1, saved) if training else (h1, c1)


def lstm_cell_backward(saved, dh1, dc1=None):
    """Gradients of lstm_cell from its ``saved``: LstmCellGrads (dh, dc: of h and c)."""
    _check_saved(saved, (_core.LstmSaved, cuda.LstmSaved), "lstm_cell")
    with _renamed({"dy": "dh1", "dcn": "dc1"}):
        g = lstm_backward(saved, _one_step("dh1", dh1, _cell_output_shape(saved)), None, dc1)
    return LstmCellGrads(g.dx[0], g.dh0, g.dc0, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh)


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, linear_before_reset=True,
             training=False, packed=None):
    """One GRU step, as torch.nn.GRUCell: x (B, I), h (B, H).

    Returns ``h1``, or ``(h1, saved)`` when ``training``. ``packed``: see pack_weights.
    """
    with _renamed({"h0": "h"}):
        y, h1, saved = gru_forward(_one_step("x", x), w_ih, w_hh, b_ih, b_hh, h,
                                   linear_before_reset=linear_before_reset, training=training,
                                   packed=packed)
    return (h1, saved) if training else h1


def gru_cell_backward(saved, dh1):
    """Gradients of gru_cell from its ``saved``: GruCellGrads (dh: of h)."""
    _check_saved(saved, (_core.GruSaved, cuda.GruSaved), "gru_cell")
    with _renamed({"dy": "dh1"}):
        g = gru_backward(saved, _one_step("dh1", dh1, _cell_output_shape(saved)))
    return GruCellGrads(g.dx[0], g.dh0, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh)
