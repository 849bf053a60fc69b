"""fusedrnn.LSTM / fusedrnn.GRU: the layer stack against a stack of reference layers and
against torch.nn.LSTM / torch.nn.GRU; state_dict, modes, dropout, errors; fusedrnn.optim.

Random configurations are drawn from a seed per case (the case id is its seed), covering
1-sized and prime sizes, 1-3 layers, both directions, projection, batch_first, bias=False,
unbatched input, variable lengths (0 and T included), given or absent initial states and
final-state gradients, float32 and float64.

Tolerances per dtype: float64 results must match to 1e-9 (the same math summed in another
order: a few ulps times the terms accumulated over time, layers and directions); float32
results are compared with a float64 oracle on the same inputs and must match to 1e-4 relative
to the array's scale (float32 rounding carried through the recurrence and the layers).
"""

import copy
import pickle
import zlib

import numpy as np
import pytest

import fusedrnn
import fusedrnn.modules as modules
from fusedrnn import reference as ref

TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}
SIZES = [1, 2, 3, 5, 7]


def assert_close(actual, expected, dtype, name):
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} vs {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"{name}: dtype {actual.dtype}, expected {dtype}"
    if actual.size == 0:
        return
    tol = TOL[np.dtype(dtype)]
    scale = max(1.0, float(np.abs(expected).max()))
    err = np.abs(actual.astype(np.float64) - expected)
    assert (err <= tol * scale + tol * np.abs(expected)).all(), \
        f"{name}: max abs err {err.max():.3g} (scale {scale:.3g}, tol {tol})"


# --------------------------------------------------------------------------------------
# Random configurations
# --------------------------------------------------------------------------------------


def draw_config(seed, *, torch_compatible=False):
    rng = np.random.default_rng(zlib.crc32(f"config{seed}".encode()))
    kind = ["lstm", "gru"][seed % 2]
    H = int(rng.choice(SIZES))
    cfg = dict(
        kind=kind,
        T=int(rng.choice(SIZES)), B=int(rng.choice(SIZES)), I=int(rng.choice(SIZES)), H=H,
        num_layers=int(rng.integers(1, 4)),
        bidirectional=bool(rng.integers(2)),
        batch_first=bool(rng.integers(2)),
        bias=bool(rng.random() < 0.75),
        proj_size=int(rng.integers(1, H)) if kind == "lstm" and H > 1 and rng.random() < 0.4
        else 0,
        linear_before_reset=bool(torch_compatible or rng.random() < 0.6),
        unbatched=bool(rng.random() < 0.2),
        with_hx=bool(rng.random() < 0.7),
        with_dhx=bool(rng.random() < 0.7),
        dtype=[np.float64, np.float32][(seed // 2) % 2],
    )
    if cfg["unbatched"]:
        cfg["B"] = 1
    lengths = None
    if rng.random() < 0.5 and not (torch_compatible and cfg["unbatched"]):
        low = 1 if torch_compatible else 0  # torch cannot pack an empty sequence
        lengths = rng.integers(low, cfg["T"] + 1, cfg["B"])
        if cfg["B"] >= 2:
            lengths[rng.permutation(cfg["B"])[:2]] = [low, cfg["T"]]
    cfg["lengths"] = lengths
    return cfg


def make_module(cfg, **extra):
    kw = dict(num_layers=cfg["num_layers"], bias=cfg["bias"], batch_first=cfg["batch_first"],
              bidirectional=cfg["bidirectional"], dtype=cfg["dtype"], seed=1)
    kw.update(extra)
    if cfg["kind"] == "lstm":
        return fusedrnn.LSTM(cfg["I"], cfg["H"], proj_size=cfg["proj_size"], **kw)
    return fusedrnn.GRU(cfg["I"], cfg["H"], linear_before_reset=cfg["linear_before_reset"],
                        **kw)


def make_data(cfg, module):
    """Inputs and upstream gradients in the module's (user-facing) layouts."""
    rng = np.random.default_rng(zlib.crc32(repr(sorted(cfg.items(), key=str)).encode()))
    dt, T, B, I = cfg["dtype"], cfg["T"], cfg["B"], cfg["I"]
    LD = module.num_layers * module.num_directions
    H, H_out = module.hidden_size, module.proj_size or module.hidden_size
    batched = not cfg["unbatched"]

    def arr(*shape):
        return rng.uniform(-1, 1, shape).astype(dt)

    def state(size):
        return arr(LD, B, size) if batched else arr(LD, size)

    if batched:
        x = rng.standard_normal((B, T, I) if cfg["batch_first"] else (T, B, I)).astype(dt)
    else:  # (T, I) whatever batch_first says, as in PyTorch
        x = rng.standard_normal((T, I)).astype(dt)
    y_shape = ((B, T) if cfg["batch_first"] else (T, B)) if batched else (T,)
    y_shape += (module.num_directions * H_out,)
    d = dict(x=x, dy=arr(*y_shape), h0=None, c0=None, dhn=None, dcn=None)
    if cfg["with_hx"]:
        d["h0"] = state(H_out)
        d["c0"] = state(H) if cfg["kind"] == "lstm" else None
    if cfg["with_dhx"]:
        d["dhn"] = state(H_out)
        d["dcn"] = state(H) if cfg["kind"] == "lstm" else None
    return d


def run_module(module, cfg, d):
    """Forward and backward through the module: dict of outputs and gradients."""
    if cfg["kind"] == "lstm":
        hx = None if d["h0"] is None else (d["h0"], d["c0"])
        y, (hn, cn) = module(d["x"], hx, lengths=cfg["lengths"])
        dhx = None if d["dhn"] is None else (d["dhn"], d["dcn"])
        dx, (dh0, dc0) = module.backward(d["dy"], dhx)
        out = dict(y=y, hn=hn, cn=cn, dx=dx, dh0=dh0, dc0=dc0)
    else:
        y, hn = module(d["x"], d["h0"], lengths=cfg["lengths"])
        dx, dh0 = module.backward(d["dy"], d["dhn"])
        out = dict(y=y, hn=hn, dx=dx, dh0=dh0)
    out.update({"grad." + k: v for k, v in module.grads.items()})
    return out


# --------------------------------------------------------------------------------------
# The oracle: a stack of reference layers (float64), written directly from the definition
# --------------------------------------------------------------------------------------


def reference_stack(module, cfg, d, masks=None):
    """What the module must compute, from fusedrnn.reference one layer and direction at a
    time in float64. ``masks`` (per layer, None or the dropout mask applied to its input)
    lets a training run with dropout be replayed exactly."""
    f64 = np.float64
    L, D = module.num_layers, module.num_directions
    H_out = module.proj_size or module.hidden_size
    lstm = cfg["kind"] == "lstm"
    p = {k: v.astype(f64) for k, v in module.state_dict().items()}
    batched = not cfg["unbatched"]

    def time_major(a):  # the user's layout -> (T, B, .)
        if a is None:
            return None
        a = a.astype(f64)
        if not batched:
            return a[:, None]
        return a.transpose(1, 0, 2) if cfg["batch_first"] else a

    def state_major(a):
        return None if a is None else (a.astype(f64) if batched else a.astype(f64)[:, None])

    x, dy = time_major(d["x"]), time_major(d["dy"])
    h0, c0 = state_major(d["h0"]), state_major(d.get("c0"))
    dhn, dcn = state_major(d["dhn"]), state_major(d.get("dcn"))
    T, B = x.shape[:2]

    inputs, caches, hn, cn = [], [], [], []
    inp = x
    for layer in range(L):
        if masks is not None and masks[layer] is not None:
            inp = inp * masks[layer]
        inputs.append(inp)
        outs = []
        for direction in range(D):
            sfx, i = f"_l{layer}" + ("_reverse" if direction else ""), layer * D + direction
            args = (inp, p["weight_ih" + sfx], p["weight_hh" + sfx], p.get("bias_ih" + sfx),
                    p.get("bias_hh" + sfx), None if h0 is None else h0[i])
            if lstm:
                y, h, c, cache = ref.lstm_forward(*args, None if c0 is None else c0[i],
                                                  w_hr=p.get("weight_hr" + sfx),
                                                  lengths=cfg["lengths"], reverse=bool(direction))
                cn.append(c)
            else:
                y, h, cache = ref.gru_forward(*args, lengths=cfg["lengths"],
                                              reverse=bool(direction),
                                              linear_before_reset=cfg["linear_before_reset"])
            hn.append(h)
            caches.append(cache)
            outs.append(y)
        inp = np.concatenate(outs, axis=2)
    y = inp

    grads, dh0, dc0 = {}, [None] * (L * D), [None] * (L * D)
    g_out = dy
    for layer in reversed(range(L)):
        dx = 0
        for direction in range(D):
            sfx, i = f"_l{layer}" + ("_reverse" if direction else ""), layer * D + direction
            dy_d = g_out[..., direction * H_out:(direction + 1) * H_out]
            if lstm:
                g = ref.lstm_backward(caches[i], dy_d, None if dhn is None else dhn[i],
                                      None if dcn is None else dcn[i])
                dc0[i] = g["dc0"]
            else:
                g = ref.gru_backward(caches[i], dy_d, None if dhn is None else dhn[i])
            dh0[i] = g["dh0"]
            dx = dx + g["dx"]
            for ours, theirs in [("weight_ih", "dw_ih"), ("weight_hh", "dw_hh"),
                                 ("bias_ih", "db_ih"), ("bias_hh", "db_hh"),
                                 ("weight_hr", "dw_hr")]:
                if g.get(theirs) is not None:
                    grads["grad." + ours + sfx] = g[theirs]
        if masks is not None and masks[layer] is not None:
            dx = dx * masks[layer]
        g_out = dx

    def user(a):  # (T, B, .) -> the user's layout
        if not batched:
            return a[:, 0]
        return a.transpose(1, 0, 2) if cfg["batch_first"] else a

    def states(lst):
        s = np.stack(lst)
        return s if batched else s[:, 0]

    out = dict(y=user(y), hn=states(hn), dx=user(g_out), dh0=states(dh0), **grads)
    if lstm:
        out.update(cn=states(cn), dc0=states(dc0))
    return out


def check(actual, expected, dtype, context):
    assert set(actual) == set(expected), f"{context}: {sorted(actual)} vs {sorted(expected)}"
    for name in expected:
        assert_close(actual[name], expected[name], dtype, f"{context} {name}")


def describe(cfg):
    return " ".join(f"{k}={v}" for k, v in cfg.items() if k != "dtype") + \
        f" dtype={np.dtype(cfg['dtype'])}"


# --------------------------------------------------------------------------------------
# Against the reference stack
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_against_reference_stack(seed):
    cfg = draw_config(seed)
    module = make_module(cfg)
    d = make_data(cfg, module)
    check(run_module(module, cfg, d), reference_stack(module, cfg, d), cfg["dtype"],
          describe(cfg))


@pytest.mark.parametrize("seed", range(8))
def test_dropout_replays_exactly(seed):
    """With dropout, the training pass equals the reference stack run with the same masks."""
    cfg = draw_config(seed)
    cfg.update(num_layers=3)
    module = make_module(cfg, dropout=0.4)
    d = make_data(cfg, module)
    out = run_module(module, cfg, d)
    masks = module._tape["masks"]
    assert masks[0] is None and all(m is not None for m in masks[1:])
    check(out, reference_stack(module, cfg, d, masks=masks), cfg["dtype"], describe(cfg))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_sequential_and_concurrent_directions_agree(kind, monkeypatch):
    cfg = draw_config(0 if kind == "lstm" else 1)
    cfg.update(bidirectional=True, num_layers=2, T=7, B=5, dtype=np.float64)
    module = make_module(cfg)
    d = make_data(cfg, module)
    monkeypatch.setattr(modules, "_CONCURRENT_DIRECTIONS", False)
    sequential = run_module(module, cfg, d)
    monkeypatch.setattr(modules, "_CONCURRENT_DIRECTIONS", True)
    threads = fusedrnn.get_num_threads()
    fusedrnn.set_num_threads(2)  # the count at which the directions run concurrently
    try:
        concurrent = run_module(module, cfg, d)
        assert fusedrnn.get_num_threads() == 2  # a per-call cap: the setting never changes
    finally:
        fusedrnn.set_num_threads(threads)
    check(concurrent, sequential, np.float64, "concurrent vs sequential")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_unbatched_equals_batch_of_one(kind):
    cls = fusedrnn.LSTM if kind == "lstm" else fusedrnn.GRU
    m = cls(3, 5, num_layers=2, bidirectional=True, dtype=np.float64, seed=3)
    x = np.random.default_rng(0).standard_normal((7, 3))
    y1, s1 = m(x)
    y2, s2 = m(x[:, None])
    np.testing.assert_array_equal(y1, y2[:, 0])
    for a, b in zip(s1 if kind == "lstm" else [s1], s2 if kind == "lstm" else [s2]):
        np.testing.assert_array_equal(a, b[:, 0])
    y1, _ = m(x, lengths=4)  # a scalar length is accepted for unbatched input
    np.testing.assert_array_equal(y1[4:], 0)


def test_batch_first_output_is_a_view():
    m = fusedrnn.LSTM(3, 4, batch_first=True, seed=0)
    x = np.zeros((5, 7, 3), np.float32)
    y, _ = m(x)
    assert y.shape == (5, 7, 4) and y.base is not None
    dx, _ = m.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.base is not None


# --------------------------------------------------------------------------------------
# Against PyTorch
# --------------------------------------------------------------------------------------


def torch_run(module, cfg, d):
    torch = pytest.importorskip("torch")
    tdt = torch.float64 if np.dtype(cfg["dtype"]) == np.float64 else torch.float32
    kw = dict(num_layers=cfg["num_layers"], bias=cfg["bias"], batch_first=cfg["batch_first"],
              bidirectional=cfg["bidirectional"], dtype=tdt)
    if cfg["kind"] == "lstm":
        net = torch.nn.LSTM(cfg["I"], cfg["H"], proj_size=cfg["proj_size"], **kw)
    else:
        net = torch.nn.GRU(cfg["I"], cfg["H"], **kw)
    net.load_state_dict({k: torch.tensor(v) for k, v in module.state_dict().items()})

    def leaf(a):
        return None if a is None else torch.tensor(a, requires_grad=True)

    x, h0, c0 = leaf(d["x"]), leaf(d["h0"]), leaf(d["c0"])
    inp = x
    if cfg["lengths"] is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.tensor(cfg["lengths"]), batch_first=cfg["batch_first"],
            enforce_sorted=False)
    if cfg["kind"] == "lstm":
        y, (hn, cn) = net(inp, None if h0 is None else (h0, c0))
    else:
        y, hn = net(inp, h0)
        cn = None
    if cfg["lengths"] is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=cfg["batch_first"],
                                                      total_length=cfg["T"])
    loss = (y * torch.tensor(d["dy"])).sum()
    if d["dhn"] is not None:
        loss = loss + (hn * torch.tensor(d["dhn"])).sum()
        if cn is not None:
            loss = loss + (cn * torch.tensor(d["dcn"])).sum()
    loss.backward()
    out = dict(y=y, hn=hn, dx=x.grad)
    if cn is not None:
        out["cn"] = cn
    if h0 is not None:
        out["dh0"] = h0.grad
        if c0 is not None:
            out["dc0"] = c0.grad
    out.update({"grad." + k: p.grad for k, p in net.named_parameters()})
    return {k: v.detach().numpy() for k, v in out.items()}


@pytest.mark.parametrize("seed", range(40))
def test_against_torch(seed):
    pytest.importorskip("torch")
    cfg = draw_config(seed, torch_compatible=True)
    module = make_module(cfg)
    d = make_data(cfg, module)
    ours = run_module(module, cfg, d)
    theirs = torch_run(module, cfg, d)
    if d["h0"] is None:  # torch has no initial-state gradient for a state it made up
        ours.pop("dh0"), ours.pop("dc0", None)
    check(ours, theirs, cfg["dtype"], describe(cfg))


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_weights_from_torch(kind):
    """A torch module's state_dict (tensors, with requires_grad) loads and gives its numbers."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    cls, tcls = (fusedrnn.LSTM, torch.nn.LSTM) if kind == "lstm" else (fusedrnn.GRU,
                                                                          torch.nn.GRU)
    extra = dict(proj_size=3) if kind == "lstm" else {}
    net = tcls(5, 7, num_layers=2, bidirectional=True, batch_first=True, **extra)
    ours = cls(5, 7, num_layers=2, bidirectional=True, batch_first=True, **extra)
    assert list(ours.state_dict()) == list(net.state_dict())
    assert [v.shape for v in ours.state_dict().values()] == \
        [tuple(v.shape) for v in net.state_dict().values()]
    ours.load_state_dict(net.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 11, 5)).astype(np.float32)
    with torch.no_grad():
        y_t = net(torch.tensor(x))[0].numpy()
    ours.eval()
    assert_close(ours(x)[0], y_t, np.float32, "y")


# --------------------------------------------------------------------------------------
# Initialisation, state_dict
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_init_is_pytorchs_and_seeded(kind):
    cls = fusedrnn.LSTM if kind == "lstm" else fusedrnn.GRU
    a = cls(3, 16, num_layers=2, bidirectional=True, seed=5)
    b = cls(3, 16, num_layers=2, bidirectional=True, seed=5)
    c = cls(3, 16, num_layers=2, bidirectional=True, seed=6)
    for k, v in a.state_dict().items():
        assert v.dtype == np.float32
        assert np.abs(v).max() <= 0.25 and np.abs(v).max() > 0.2  # U(-1/sqrt(16), 1/sqrt(16))
        np.testing.assert_array_equal(v, b.state_dict()[k])
        assert not np.array_equal(v, c.state_dict()[k])
    assert a.num_parameters() == sum(v.size for v in a.parameters())


def test_state_dict_round_trip_and_shared_arrays():
    a = fusedrnn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=2, dtype=np.float64,
                      seed=0)
    b = fusedrnn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=2, dtype=np.float64,
                      seed=1)
    before = {k: id(v) for k, v in b.state_dict().items()}
    assert b.load_state_dict({k: v.tolist() for k, v in a.state_dict().items()}) == ([], [])
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, a.state_dict()[k])
        assert id(v) == before[k]  # copied into the existing arrays
    assert a.weight_hr_l1_reverse is a.state_dict()["weight_hr_l1_reverse"]
    a.bias_ih_l0[:] = 7  # state_dict values are the parameters, as in PyTorch
    assert (a.state_dict()["bias_ih_l0"] == 7).all()


def test_load_state_dict_reports_every_problem_and_changes_nothing():
    m = fusedrnn.GRU(3, 4, bias=False, seed=0)
    snapshot = {k: v.copy() for k, v in m.state_dict().items()}
    bad = {"weight_ih_l0": np.zeros((12, 2)), "bias_ih_l0": np.zeros(12),
           "weight_hh_l0_reverse": np.zeros((12, 4))}
    with pytest.raises(ValueError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    for part in ["missing keys: weight_hh_l0", "unexpected keys: bias_ih_l0, "
                 "weight_hh_l0_reverse", "weight_ih_l0: expected shape (12, 3), got (12, 2)"]:
        assert part in msg
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, snapshot[k])
    result = m.load_state_dict({"weight_hh_l0": np.ones((12, 4)), "extra": 1}, strict=False)
    assert result.missing_keys == ["weight_ih_l0"] and result.unexpected_keys == ["extra"]
    assert (m.weight_hh_l0 == 1).all()
    with pytest.raises(ValueError, match="weight_hh_l0: expected real numbers"):
        m.load_state_dict({"weight_hh_l0": np.full((12, 4), "a")}, strict=False)
    with pytest.raises(TypeError, match="state_dict: expected a mapping"):
        m.load_state_dict([("weight_hh_l0", np.ones((12, 4)))])


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))],
                         ids=["deepcopy", "pickle"])
def test_copy_and_pickle(clone):
    m = fusedrnn.LSTM(4, 3, num_layers=2, bidirectional=True, proj_size=2, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 4)).astype(np.float32)
    y, _ = m(x)  # a training forward: its record is not copied
    c = clone(m)
    with pytest.raises(RuntimeError, match="copied or unpickled"):
        c.backward(y)
    np.testing.assert_array_equal(c(x)[0], y)
    # An unpickled input has an equal but distinct dtype object; it is accepted all the same.
    np.testing.assert_array_equal(m(pickle.loads(pickle.dumps(x)))[0], y)


# --------------------------------------------------------------------------------------
# Modes, dropout
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_backward_needs_a_training_forward(kind):
    m = (fusedrnn.LSTM if kind == "lstm" else fusedrnn.GRU)(2, 3)
    x = np.zeros((4, 1, 2), np.float32)
    with pytest.raises(RuntimeError, match="no forward has run"):
        m.backward(np.zeros((4, 1, 3), np.float32))
    assert m.training and m.eval() is m and not m.training
    y, _ = m(x)
    with pytest.raises(RuntimeError, match="eval mode.*train\\(\\)"):
        m.backward(np.zeros_like(y))
    assert m.train() is m and m.training
    y, _ = m(x)
    m.backward(np.zeros_like(y))
    m.backward(None)  # again, and with dy=None (zeros)
    assert set(m.grads) == set(m.state_dict())


def test_dropout_train_eval_and_seed():
    def make():
        return fusedrnn.GRU(3, 8, num_layers=3, dropout=0.5, seed=42)

    x = np.random.default_rng(0).standard_normal((6, 4, 3)).astype(np.float32)
    a, b = make(), make()
    ya1, ya2, yb1 = a(x)[0], a(x)[0], b(x)[0]
    np.testing.assert_array_equal(ya1, yb1)  # same seed, same masks
    assert not np.array_equal(ya1, ya2)  # a new mask per forward
    a.eval()
    e1, e2 = a(x)[0], a(x)[0]
    np.testing.assert_array_equal(e1, e2)  # no dropout in eval mode
    no_dropout = fusedrnn.GRU(3, 8, num_layers=3, seed=42)
    np.testing.assert_array_equal(e1, no_dropout(x)[0])
    masks = make()._dropout_mask((1000, 100))
    assert set(np.unique(masks)) == {0.0, 2.0} and abs((masks == 0).mean() - 0.5) < 0.01
    with pytest.warns(UserWarning, match="num_layers=1"):
        fusedrnn.LSTM(2, 2, dropout=0.2)


# --------------------------------------------------------------------------------------
# Argument errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(hidden_size=0), ValueError, "hidden_size: expected an integer >= 1, got 0"),
    (dict(input_size=2.5), TypeError, "input_size: expected an integer"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(proj_size=4), ValueError, "proj_size: expected 0 or a value smaller than "
                                    "hidden_size=4, got 4"),
    (dict(dropout=1.5), ValueError, "dropout: expected a probability in \\[0, 1\\], got 1.5"),
    (dict(dtype=np.int32), TypeError, "dtype: expected float32 or float64, got int32"),
])
def test_constructor_errors(kwargs, exc, match):
    args = dict(input_size=3, hidden_size=4)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fusedrnn.LSTM(**args)


def test_call_errors():
    m = fusedrnn.LSTM(3, 4, num_layers=2, batch_first=True)
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"x: expected a 3-D array \(B, T, I\)"):
        m(np.zeros((2, 5, 3, 1), np.float32))
    with pytest.raises(ValueError, match="x: expected input size I=3.*got shape \\(2, 5, 4\\)"):
        m(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(TypeError, match="x: expected dtype float32 \\(the module's\\), got "
                                        "float64"):
        m(x.astype(np.float64))
    with pytest.raises(ValueError, match=r"h0: expected shape \(L\*D=2, B=2, 4\), got "
                                         r"\(1, 2, 4\)"):
        m(x, (np.zeros((1, 2, 4), np.float32), None))
    with pytest.raises(ValueError, match=r"c0: expected shape \(L\*D=2, 4\) \(x is unbatched\)"):
        m(x[0], (None, np.zeros((2, 1, 4), np.float32)))
    with pytest.raises(TypeError, match="hx: expected a pair"):
        m(x, np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match="lengths"):
        m(x, lengths=[6, 1])
    y, _ = m(x)
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 5, 4\) \(that of y\)"):
        m.backward(np.zeros((5, 2, 4), np.float32))
    with pytest.raises(ValueError, match="dcn: expected shape"):
        m.backward(y, (None, np.zeros((2, 2, 5), np.float32)))


# --------------------------------------------------------------------------------------
# fusedrnn.optim
# --------------------------------------------------------------------------------------


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = fusedrnn.optim.Adam(params, lr=0.01, weight_decay=0.1)
    topt = torch.optim.Adam(tparams.values(), lr=0.01, weight_decay=0.1)
    for _ in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        opt.step(grads)
        for k, p in tparams.items():
            p.grad = torch.tensor(grads[k])
        topt.step()
    for k, v in params.items():
        np.testing.assert_allclose(v, tparams[k].detach().numpy(), rtol=1e-12, atol=1e-12)


def test_adam_trains_a_module_and_clipping():
    m = fusedrnn.GRU(1, 4, seed=0, dtype=np.float64)
    opt = fusedrnn.optim.Adam(m.state_dict(), lr=0.05)
    x = np.linspace(-1, 1, 10).reshape(10, 1, 1)
    losses = []
    for _ in range(30):
        y, hn = m(x)
        losses.append(float(((hn[0] - 0.5) ** 2).sum()))
        m.backward(None, 2 * (hn - 0.5))
        norm = fusedrnn.optim.clip_grad_norm_(m.grads, 0.1)
        assert norm >= 0 and np.sqrt(sum((g ** 2).sum() for g in m.grads.values())) <= 0.1 + 1e-9
        opt.step(m.grads)
    assert losses[-1] < 0.1 * losses[0]
    with pytest.raises(KeyError, match="nope"):
        opt.step({"nope": np.zeros(1)})
