"""The thread team: results identical for every thread count, and equal to the reference when
the hidden units are split across threads (H spans several SIMD panels per thread), or, in the
one-barrier forward loops (LSTM, GRU) with weights of up to 1 MiB, the batch rows."""

import numpy as np
import pytest

import fusedrnn
from fusedrnn import reference as ref

# 131 hidden units: several 16-lane float panels (8-lane for float64) per thread, and a short
# last panel; B large enough that the per-step work is split (one thread runs problems under
# 2^16 multiply-adds a step in the two-barrier loops); lengths with 0s and full lengths.
T, B, I, H = 7, 64, 11, 131
LENGTHS = np.resize(np.array([7, 0, 3, 7, 1, 5, 2]), B)


P = 67  # the projection's outputs are split across threads too

# Which split the LSTM and GRU forward loops make of this problem (the others split units):
# with I = 11 the weights (297 KB for the float32 LSTM, 595 KB float64) fit the 1 MiB under
# which each thread runs its own batch rows through every unit; with I = 600 (over 1.1 MB for
# either cell) each thread runs its units of every row, with a barrier each step.
SPLITS = {"rows": 11, "units": 600}


def problem(cell, dtype, seed=0, T=T, B=B, H=H, I=I):
    G = 3 if cell.startswith("gru") else 4
    out = P if cell == "lstmp" else H
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    u = lambda *s: rng.uniform(-k, k, s).astype(dtype)  # noqa: E731
    p = dict(x=rng.standard_normal((T, B, I)).astype(dtype), w_ih=u(G * H, I),
             w_hh=u(G * H, out), b_ih=u(G * H), b_hh=u(G * H), h0=u(B, out))
    if cell == "lstmp":
        p["w_hr"] = u(P, H)
    return p


def run(cell, p, threads, reverse, lengths):
    before = fusedrnn.get_num_threads()
    fusedrnn.set_num_threads(threads)
    try:
        if cell.startswith("lstm"):
            y, hn, cn, saved = fusedrnn.lstm_forward(**p, lengths=lengths, reverse=reverse,
                                                     training=True)
            g = fusedrnn.lstm_backward(saved, np.ones_like(y), hn, cn)
            return (y, hn, cn) + tuple(g)
        y, hn, saved = fusedrnn.gru_forward(**p, lengths=lengths, reverse=reverse, training=True,
                                            linear_before_reset=cell == "gru")
        return (y, hn) + tuple(fusedrnn.gru_backward(saved, np.ones_like(y), hn))
    finally:
        fusedrnn.set_num_threads(before)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("cell", ["lstm", "lstmp", "gru", "gru_original"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_thread_counts_give_bitwise_identical_results(cell, reverse, lengths, split):
    p = problem(cell, np.float32, I=SPLITS[split])
    one = run(cell, p, 1, reverse, lengths)
    for threads in (2, 3):
        many = run(cell, p, threads, reverse, lengths)
        for a, b in zip(one, many):
            assert np.array_equal(a, b), f"{threads} threads differ from 1"


# A few steps of a batch: at most 32 rows in all (T * B), the forwards (and for one or two
# steps the backwards of the LSTM and GRU) read the weights where they are instead of packing
# them; 16 rows of 250 units are enough work a step (2^20 multiply-adds) for the units to be
# split even while the workers sleep.
FEW = dict(T=2, B=16, H=250)
FEW_LENGTHS = np.resize(np.array([2, 0, 1]), FEW["B"])


@pytest.mark.parametrize("cell", ["lstm", "lstmp", "gru", "gru_original"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, FEW_LENGTHS])
def test_few_steps_give_bitwise_identical_results(cell, reverse, lengths):
    p = problem(cell, np.float32, **FEW)
    one = run(cell, p, 1, reverse, lengths)
    for threads in (2, 3):
        many = run(cell, p, threads, reverse, lengths)
        for a, b in zip(one, many):
            assert np.array_equal(a, b), f"{threads} threads differ from 1"


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("cell", ["lstm", "lstmp", "gru", "gru_original"])
@pytest.mark.parametrize("reverse", [False, True])
def test_split_work_matches_reference(cell, reverse, split):
    p = problem(cell, np.float64, seed=1, I=SPLITS[split])
    got = run(cell, p, 2, reverse, LENGTHS)
    if cell.startswith("lstm"):
        y, hn, cn, cache = ref.lstm_forward(**p, lengths=LENGTHS, reverse=reverse)
        g = ref.lstm_backward(cache, np.ones_like(y), hn, cn)
        want = (y, hn, cn) + tuple(g[k] for k in fusedrnn.LstmGrads._fields)
    else:
        y, hn, cache = ref.gru_forward(**p, lengths=LENGTHS, reverse=reverse,
                                       linear_before_reset=cell == "gru")
        g = ref.gru_backward(cache, np.ones_like(y), hn)
        want = (y, hn) + tuple(g[k] for k in fusedrnn.GruGrads._fields)
    for a, b in zip(got, want):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_more_threads_than_cores_still_agree():
    """A team larger than the machine (oversubscribed: the barrier must yield) is still exact."""
    p = problem("gru", np.float32, seed=2)
    assert all(np.array_equal(a, b) for a, b in
               zip(run("gru", p, 1, False, LENGTHS), run("gru", p, 8, False, LENGTHS)))


def _child_run(queue):
    p = problem("lstm", np.float32, seed=3)
    queue.put(run("lstm", p, 2, False, LENGTHS)[0])


@pytest.mark.parametrize("cell", ["lstm", "lstmp", "gru", "gru_original"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_a_loop_taken_over_by_one_thread_gives_the_same_results(cell, reverse, lengths):
    """With no patience, a thread that waits for its partner at a barrier runs the rest of the
    loop alone (as it does when a busy machine deschedules the partner): same bits. The
    projected LSTM and the original GRU have two barriers a step, either of which may be
    where the loop is taken over. (Units split: a loop of batch rows has no barrier.)"""
    from fusedrnn import _core

    p = problem(cell, np.float32, seed=5, I=SPLITS["units"])
    one = run(cell, p, 1, reverse, lengths)
    _core._set_take_over_patience(0)
    try:
        for threads in (2, 3):
            for _ in range(5):  # the step at which a thread takes over varies from run to run
                many = run(cell, p, threads, reverse, lengths)
                for a, b in zip(one, many):
                    assert np.array_equal(a, b), f"{threads} threads differ from 1"
    finally:
        _core._set_take_over_patience(-1)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("cell", ["lstm", "lstmp", "gru", "gru_original"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_a_worker_joining_late_gives_the_same_results(cell, reverse, lengths, split):
    """A worker that comes late to a two-thread loop joins it mid-sequence (the caller runs
    every part alone until then), or not at all: same bits as one thread. The delays put its
    arrival before the caller starts alone, at various steps (forward and backward loops
    alike), and after the end. A loop of batch rows leaves the late worker's part to the
    caller, if the caller's own part ends first."""
    from fusedrnn import _core

    p = problem(cell, np.float32, seed=6, I=SPLITS[split])
    one = run(cell, p, 1, reverse, lengths)
    try:
        for delay_us in (0, 80, 200, 500, 1000, 20000):
            _core._set_join_delay(delay_us * 1000)
            for _ in range(2):
                for a, b in zip(one, run(cell, p, 2, reverse, lengths)):
                    assert np.array_equal(a, b), f"worker {delay_us} us late"
    finally:
        _core._set_join_delay(0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_a_slow_worker_leaves_parts_to_the_caller_with_the_same_results(cell, reverse, lengths):
    """The two threads of a loop claim a step's parts (9 here, H = 131), the caller from the
    front and its worker from the back: a worker slowed after each part it claims leaves the
    caller parts that are usually its own, in the forward and backward loops (where a part's
    recurrent GEMM and its next step's gate pass go together): same bits as one thread."""
    from fusedrnn import _core

    p = problem(cell, np.float32, seed=7, I=SPLITS["units"])
    one = run(cell, p, 1, reverse, lengths)
    try:
        for delay_us in (5, 50):
            _core._set_claim_delay(delay_us * 1000)
            for a, b in zip(one, run(cell, p, 2, reverse, lengths)):
                assert np.array_equal(a, b), f"worker {delay_us} us late per part"
    finally:
        _core._set_claim_delay(0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_small_calls_after_an_idle_team_give_the_same_results(cell):
    """Small problems (batch 1) run on one thread while the team's workers sleep, and wake them
    for the next call, which runs on two: the same bits either way, call after call."""
    import time

    p = {k: v[:, :1] if k == "x" else v for k, v in problem(cell, np.float32, 7).items()
         if k != "h0"}
    one = run(cell, p, 1, False, None)
    for _ in range(3):
        time.sleep(0.02)  # the workers look for work for 2 ms, then sleep
        for _ in range(2):  # the first call finds them asleep, the second awake
            for a, b in zip(one, run(cell, p, 2, False, None)):
                assert np.array_equal(a, b)


def test_an_idle_team_leaves_the_cores_to_others():
    """Nothing of fusedrnn's spins between calls: the team's workers look for work for 2 ms
    after a job, then sleep, and its BLAS runs single-threaded inside the team. (A pool that
    spins on after its calls, as NumPy's OpenBLAS does for tens of milliseconds, slows whatever
    the program runs next: see the README.)"""
    import time

    p = problem("lstm", np.float32, seed=5, I=SPLITS["units"])
    time.sleep(0.3)  # NumPy's BLAS pool, if an earlier test woke it, goes back to sleep
    run("lstm", p, 2, False, None)  # packing, both time loops, the BLAS weight gradients
    time.sleep(0.01)  # past the workers' 2 ms
    start = time.process_time()
    time.sleep(0.3)
    used = time.process_time() - start
    assert used < 0.03, f"the process used {used:.3f} s of CPU in 0.3 s without calls"


def test_kernels_work_in_a_forked_child():
    """fork() keeps only the calling thread: the child must not wait on the parent's team."""
    import multiprocessing

    p = problem("lstm", np.float32, seed=3)
    expected = run("lstm", p, 2, False, LENGTHS)[0]  # the parent's team now has workers
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_run, args=(queue,))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_eight_python_threads_match_serial_calls(cell):
    """Concurrent calls (the GIL is released) give exactly the serial results, while another
    thread keeps changing the thread count (which may change nothing but the speed)."""
    import concurrent.futures
    import threading

    problems = [problem(cell, np.float32, seed=10 + i) for i in range(8)]

    def call(p):
        if cell == "lstm":
            y, hn, cn, saved = fusedrnn.lstm_forward(**p, lengths=LENGTHS, training=True)
            return (y, hn, cn) + tuple(fusedrnn.lstm_backward(saved, np.ones_like(y)))
        y, hn, saved = fusedrnn.gru_forward(**p, lengths=LENGTHS, training=True)
        return (y, hn) + tuple(fusedrnn.gru_backward(saved, np.ones_like(y)))

    serial = [call(p) for p in problems]
    before = fusedrnn.get_num_threads()
    stop = threading.Event()

    def churn():
        n = 1
        while not stop.is_set():
            fusedrnn.set_num_threads(n % 3 + 1)
            n += 1

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(3):
                concurrent_results = list(pool.map(call, problems))
                for got, want in zip(concurrent_results, serial):
                    for a, b in zip(got, want):
                        assert (a is None and b is None) or np.array_equal(a, b)
    finally:
        stop.set()
        churner.join(timeout=10)
        fusedrnn.set_num_threads(before)
