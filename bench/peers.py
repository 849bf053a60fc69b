"""Runners for one LSTM/GRU layer in each library, built from the same weights.

Each ``make_*`` returns ``{"inference": f, "training": g}`` (a mode is absent when the peer
cannot run it); each callable runs the whole sequence once. Peers that are not installed raise
ImportError, which the callers report as a skipped column.
"""

import numpy as np

import fusedrnn
from fusedrnn import reference


def make_problem(cell, T, B, H, I=None, dtype=np.float32, seed=0):
    """Inputs and PyTorch-initialised weights (uniform +-1/sqrt(H)) for one layer."""
    I = H if I is None else I
    G = 4 if cell == "lstm" else 3
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(H)
    u = lambda *shape: rng.uniform(-k, k, shape).astype(dtype)  # noqa: E731
    return {
        "x": rng.standard_normal((T, B, I)).astype(dtype),
        "w_ih": u(G * H, I), "w_hh": u(G * H, H), "b_ih": u(G * H), "b_hh": u(G * H),
    }


def make_fusedrnn(cell, p):
    """Also "inference packed": inference on weights packed once (fusedrnn.pack_weights)."""
    packed = fusedrnn.pack_weights(p["w_ih"], p["w_hh"])
    if cell == "lstm":
        def train():
            y, _, _, saved = fusedrnn.lstm_forward(**p, training=True)
            fusedrnn.lstm_backward(saved, np.ones_like(y))
        return {"inference": lambda: fusedrnn.lstm_forward(**p), "training": train,
                "inference packed": lambda: fusedrnn.lstm_forward(**p, packed=packed)}

    def train():
        y, _, saved = fusedrnn.gru_forward(**p, training=True)
        fusedrnn.gru_backward(saved, np.ones_like(y))
    return {"inference": lambda: fusedrnn.gru_forward(**p), "training": train,
            "inference packed": lambda: fusedrnn.gru_forward(**p, packed=packed)}


def make_reference(cell, p):
    fwd = reference.lstm_forward if cell == "lstm" else reference.gru_forward
    bwd = reference.lstm_backward if cell == "lstm" else reference.gru_backward

    def train():
        out = fwd(**p)
        bwd(out[-1], np.ones_like(out[0]))
    return {"inference": lambda: fwd(**p), "training": train}


def flops(cell, shape, mode):
    """The FLOPs of one call at shape (T, B, H), I = H: 2*T*B*G*H*(I+H) forward, 3x training."""
    T, B, H = shape
    G = 4 if cell == "lstm" else 3
    return 2 * T * B * G * H * (H + H) * (3 if mode == "training" else 1)


def torch_runners(torch, cell, p, module_to=None):
    """Inference and training calls of a one-layer torch.nn.LSTM / nn.GRU holding the weights
    of p (torch tensors); module_to: arguments of Module.to (device, dtype), if any."""
    T, B, I = p["x"].shape
    H = p["w_hh"].shape[1]
    module = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H)
    if module_to:
        module = module.to(*module_to)
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            getattr(module, {"w": "weight_", "b": "bias_"}[name[0]] + name[2:] + "_l0").copy_(p[name])
    module.flatten_parameters()
    x = p["x"]

    def inference():
        with torch.no_grad():
            module(x)

    def train():
        xg = x.detach().requires_grad_()
        y, _ = module(xg)
        y.backward(torch.ones_like(y))
    return {"inference": inference, "training": train}


def make_torch(cell, p):
    import torch

    return torch_runners(torch, cell, {k: torch.from_numpy(v) for k, v in p.items()})


def _onnx_gates(w, cell, H):
    """PyTorch gate blocks to ONNX's order (LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h)."""
    order = [0, 3, 1, 2] if cell == "lstm" else [1, 0, 2]
    return np.concatenate([w[k * H:(k + 1) * H] for k in order])


def make_onnxruntime(cell, p):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    T, B, I = p["x"].shape
    H = p["w_hh"].shape[1]
    W = _onnx_gates(p["w_ih"], cell, H)[None]
    R = _onnx_gates(p["w_hh"], cell, H)[None]
    Bias = np.concatenate([_onnx_gates(p["b_ih"], cell, H), _onnx_gates(p["b_hh"], cell, H)])[None]
    attrs = {"hidden_size": H}
    if cell == "gru":
        attrs["linear_before_reset"] = 1  # PyTorch's GRU
    node = helper.make_node("LSTM" if cell == "lstm" else "GRU", ["X", "W", "R", "B"], ["Y"],
                            **attrs)
    graph = helper.make_graph(
        [node], "rnn",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(a.astype(np.float32), n) for a, n in ((W, "W"), (R, "R"), (Bias, "B"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    # The onnx package stamps its own newest IR version, which an older ONNX Runtime refuses
    # ("Unsupported model IR version: 14, max supported IR version: 13" on the GPU machine);
    # opset 14 needs no more than IR 8 (as tests/test_peers.py builds its models).
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = fusedrnn.get_num_threads()
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    x = p["x"].astype(np.float32)
    return {"inference": lambda: session.run(None, {"X": x})}


PEERS = {
    "fusedrnn": make_fusedrnn,
    "numpy-ref": make_reference,
    "torch": make_torch,
    "onnxruntime": make_onnxruntime,
}
