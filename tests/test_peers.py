"""The compiled kernels against independent implementations: PyTorch (nn.LSTM with and
without proj_size, nn.GRU, nn.LSTMCell, nn.GRUCell; packed sequences; the reverse direction
of bidirectional modules) forward and every gradient in float64, and ONNX Runtime's GRU node
with linear_before_reset=0 (the variant PyTorch lacks) forward in float32.

Each test skips when its peer is not installed.
"""

import dataclasses

import numpy as np
import pytest

import fusedrnn
from conftest import assert_named_close, kernel_backward, kernel_forward, make_problem, rng_for

# Both sides in float64, the same math in a different order: ~1e-10 (conftest.TOLERANCES).
F64 = np.float64

# (T, B, I, H, P): ones, primes, and a projection P < H (PyTorch requires it).
SIZES = [pytest.param(1, 1, 1, 2, 1, id="T1B1I1H2"), pytest.param(7, 5, 3, 11, 5, id="T7B5I3H11")]
# Per-sequence lengths for B = 1 and B = 5: PyTorch packs only lengths >= 1.
LENGTHS = {1: [1], 5: [7, 1, 4, 7, 2]}
EXTRAS = ["bias+states", "nobias", "nostates"]


def _lengths_for(B, T, packed):
    if not packed:
        return None
    return np.minimum(np.array(LENGTHS[B]), T)


def _torch_sequence(torch, p, packed):
    """Run p through the torch module equivalent to it; return (outputs, grads) as dicts of
    NumPy arrays named like fusedrnn's."""
    nn = torch.nn
    D = 2 if p.reverse else 1
    bias = p.b_ih is not None
    kw = dict(bias=bias, bidirectional=p.reverse, dtype=torch.float64)
    if p.kind == "lstm":
        m = nn.LSTM(p.I, p.H, proj_size=p.P, **kw)
    else:
        m = nn.GRU(p.I, p.H, **kw)
    sfx = "_reverse" if p.reverse else ""
    ours = dict(weight_ih=p.w_ih, weight_hh=p.w_hh, bias_ih=p.b_ih, bias_hh=p.b_hh,
                weight_hr=p.w_hr)
    with torch.no_grad():
        for name, value in ours.items():
            if value is not None:
                getattr(m, f"{name}_l0{sfx}").copy_(torch.from_numpy(value))
    x = torch.from_numpy(p.x.copy()).requires_grad_()

    def state(a, width):
        # (D, B, width): ours in slot D-1 (zeros for None: our dh0 is still the gradient of
        # that zero state), the other direction's slot zero and unused by the loss.
        s = torch.zeros(D, p.B, width, dtype=torch.float64)
        if a is not None:
            s[D - 1] = torch.from_numpy(a)
        return s.requires_grad_()

    h0 = state(p.h0, p.H_out)
    c0 = state(p.c0, p.H)
    hx = (h0, c0) if p.kind == "lstm" else h0
    inp = x
    if packed:
        inp = nn.utils.rnn.pack_padded_sequence(x, torch.from_numpy(p.lengths),
                                                enforce_sorted=False)
    out, hn = m(inp, hx)
    if packed:
        out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=p.T)
    if p.kind == "lstm":
        hn, cn = hn
    y = out[..., (D - 1) * p.H_out:]
    outputs = dict(y=y, hn=hn[D - 1])
    if p.kind == "lstm":
        outputs["cn"] = cn[D - 1]
    loss = (y * torch.from_numpy(p.dy)).sum()
    if p.dhn is not None:
        loss = loss + (outputs["hn"] * torch.from_numpy(p.dhn)).sum()
    if p.dcn is not None:
        loss = loss + (outputs["cn"] * torch.from_numpy(p.dcn)).sum()
    loss.backward()

    def grad(name):
        if ours[name] is None:
            return None
        return getattr(m, f"{name}_l0{sfx}").grad.numpy()

    grads = dict(dx=x.grad.numpy(), dh0=h0.grad[D - 1].numpy(),
                 dw_ih=grad("weight_ih"), dw_hh=grad("weight_hh"),
                 db_ih=grad("bias_ih"), db_hh=grad("bias_hh"))
    if p.kind == "lstm":
        grads["dc0"] = c0.grad[D - 1].numpy()
        grads["dw_hr"] = grad("weight_hr")
    return {k: v.detach().numpy() for k, v in outputs.items()}, grads


@pytest.mark.parametrize("extras", EXTRAS)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "bidir_reverse"])
@pytest.mark.parametrize("T,B,I,H,P", SIZES)
@pytest.mark.parametrize("variant", ["lstm", "lstm_proj", "gru"])
def test_sequence_matches_torch(variant, T, B, I, H, P, reverse, packed, extras):
    torch = pytest.importorskip("torch")
    kind = "lstm" if variant.startswith("lstm") else "gru"
    with_bias, with_states = extras != "nobias", extras != "nostates"
    p = make_problem(rng_for("torch", variant, T, B, reverse, packed, extras), kind, T, B, I, H,
                     P=P if variant == "lstm_proj" else 0, dtype=F64,
                     b_ih=with_bias, b_hh=with_bias, h0=with_states, c0=with_states,
                     lengths=_lengths_for(B, T, packed), reverse=reverse)
    out, saved = kernel_forward(p)
    grads = kernel_backward(p, saved)
    t_out, t_grads = _torch_sequence(torch, p, packed)
    assert_named_close(out, t_out, F64, context="forward vs torch")
    assert_named_close(grads, t_grads, F64, context="backward vs torch")


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("B,I,H", [(1, 1, 1), (3, 5, 7), (13, 2, 11)])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_matches_torch(kind, B, I, H, bias):
    torch = pytest.importorskip("torch")
    rng = rng_for("torch-cell", kind, B, I, H, bias)
    G = 4 if kind == "lstm" else 3
    k = 1 / np.sqrt(H)
    a = dict(x=rng.standard_normal((B, I)), h=rng.uniform(-1, 1, (B, H)),
             c=rng.uniform(-1, 1, (B, H)), w_ih=rng.uniform(-k, k, (G * H, I)),
             w_hh=rng.uniform(-k, k, (G * H, H)),
             b_ih=rng.uniform(-k, k, G * H) if bias else None,
             b_hh=rng.uniform(-k, k, G * H) if bias else None,
             dh1=rng.uniform(-1, 1, (B, H)), dc1=rng.uniform(-1, 1, (B, H)))

    # fusedrnn
    if kind == "lstm":
        h1, c1, saved = fusedrnn.lstm_cell(a["x"], a["h"], a["c"], a["w_ih"], a["w_hh"],
                                           a["b_ih"], a["b_hh"], training=True)
        ours_out = dict(h1=h1, c1=c1)
        ours_g = fusedrnn.lstm_cell_backward(saved, a["dh1"], a["dc1"])._asdict()
    else:
        h1, saved = fusedrnn.gru_cell(a["x"], a["h"], a["w_ih"], a["w_hh"], a["b_ih"],
                                      a["b_hh"], training=True)
        ours_out = dict(h1=h1)
        ours_g = fusedrnn.gru_cell_backward(saved, a["dh1"])._asdict()

    # torch
    cls = torch.nn.LSTMCell if kind == "lstm" else torch.nn.GRUCell
    m = cls(I, H, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            if a[name] is not None:
                getattr(m, name.replace("w_", "weight_").replace("b_", "bias_")).copy_(
                    torch.from_numpy(a[name]))
    t = {n: torch.from_numpy(a[n].copy()).requires_grad_() for n in ("x", "h", "c")}
    if kind == "lstm":
        th1, tc1 = m(t["x"], (t["h"], t["c"]))
        loss = (th1 * torch.from_numpy(a["dh1"])).sum() + (tc1 * torch.from_numpy(a["dc1"])).sum()
        theirs_out = dict(h1=th1.detach().numpy(), c1=tc1.detach().numpy())
    else:
        th1 = m(t["x"], t["h"])
        loss = (th1 * torch.from_numpy(a["dh1"])).sum()
        theirs_out = dict(h1=th1.detach().numpy())
    loss.backward()

    def grad(param):
        return None if param is None else param.grad.numpy()

    theirs_g = dict(dx=t["x"].grad.numpy(), dh=t["h"].grad.numpy(),
                    dw_ih=m.weight_ih.grad.numpy(), dw_hh=m.weight_hh.grad.numpy(),
                    db_ih=grad(m.bias_ih), db_hh=grad(m.bias_hh))
    if kind == "lstm":
        theirs_g["dc"] = t["c"].grad.numpy()
    assert_named_close(ours_out, theirs_out, F64, context="cell forward vs torch")
    assert_named_close(ours_g, theirs_g, F64, context="cell backward vs torch")


# --------------------------------------------------------------------------------------
# ONNX Runtime: GRU with linear_before_reset=0
# --------------------------------------------------------------------------------------


def _onnx_gru_model(onnx, T, B, I, H, reverse, with_bias, with_lengths, with_h0):
    """One ONNX GRU node, float32 (ONNX Runtime's CPU GRU has no double kernel)."""
    from onnx import TensorProto, helper

    f32 = TensorProto.FLOAT
    specs = [("X", f32, [T, B, I], True), ("W", f32, [1, 3 * H, I], True),
             ("R", f32, [1, 3 * H, H], True), ("B", f32, [1, 6 * H], with_bias),
             ("sequence_lens", TensorProto.INT32, [B], with_lengths),
             ("initial_h", f32, [1, B, H], with_h0)]
    names = [name if used else "" for name, _, _, used in specs]
    while names and not names[-1]:  # trailing optional inputs are left out, not named ""
        names.pop()
    node = helper.make_node("GRU", names, ["Y", "Y_h"], hidden_size=H, linear_before_reset=0,
                            direction="reverse" if reverse else "forward")
    graph = helper.make_graph(
        [node], "gru",
        [helper.make_tensor_value_info(n, t, s) for n, t, s, used in specs if used],
        [helper.make_tensor_value_info("Y", f32, [T, 1, B, H]),
         helper.make_tensor_value_info("Y_h", f32, [1, B, H])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _zrh(a):
    """PyTorch's gate blocks r, z, n -> ONNX's z, r, h (along the first axis)."""
    r, z, n = np.split(a, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


@pytest.mark.parametrize("extras", EXTRAS)
@pytest.mark.parametrize("packed", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("T,B,I,H", [(1, 1, 1, 1), (7, 5, 3, 11)], ids=["T1B1I1H1", "T7B5I3H11"])
def test_gru_without_linear_before_reset_matches_onnxruntime(T, B, I, H, reverse, packed,
                                                             extras):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    with_bias, with_h0 = extras != "nobias", extras != "nostates"
    p = make_problem(rng_for("onnx", T, B, reverse, packed, extras), "gru", T, B, I, H,
                     dtype=np.float32, b_ih=with_bias, b_hh=with_bias, h0=with_h0,
                     lengths=_lengths_for(B, T, packed), reverse=reverse,
                     linear_before_reset=False)
    feeds = dict(X=p.x, W=_zrh(p.w_ih)[None], R=_zrh(p.w_hh)[None])
    if with_bias:
        feeds["B"] = np.concatenate([_zrh(p.b_ih), _zrh(p.b_hh)])[None]
    if packed:
        feeds["sequence_lens"] = p.lengths.astype(np.int32)
    if with_h0:
        feeds["initial_h"] = p.h0[None]
    model = _onnx_gru_model(onnx, T, B, I, H, reverse, with_bias, packed, with_h0)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    y_onnx, yh_onnx = sess.run(None, feeds)

    out, _ = kernel_forward(p, training=False)
    # Two float32 implementations: the float32 tolerance (conftest.TOLERANCES).
    assert_named_close(out, dict(y=y_onnx[:, 0], hn=yh_onnx[0]), np.float32,
                       context="gru linear_before_reset=False vs onnxruntime")
    # The check can tell the variants apart: PyTorch's GRU gives other numbers here.
    # (With H = 1 and no bias, r * (w h) == w (r * h): the variants coincide there.)
    if H > 1:
        lbr, _ = kernel_forward(dataclasses.replace(p, linear_before_reset=True),
                                training=False)
        assert not np.allclose(lbr["y"], y_onnx[:, 0], rtol=1e-3, atol=1e-3)
