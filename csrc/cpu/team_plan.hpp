// How the team splits a layer's time loop, and the per-thread input projection.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "blas.hpp"
#include "packed_weights.hpp"
#include "panels.hpp"
#include "part_claims.hpp"
#include "scratch.hpp"
#include "step_kernels.hpp"
#include "step_order.hpp"
#include "thread_team.hpp"

namespace fusedrnn::cpu {

// How the time loop is split: each thread owns a range of hidden units (whole SIMD panels),
// computes every gate of those units, and packs the recurrent weights it needs.
// Which recurrent weights a plan packs: each loop needs one layout, or (the two-GEMM loops,
// which pack their own) none. forward_unpacked, backward_unpacked: the same, left where they
// are (a few steps, unpacked_weights_pay).
enum class Panels { forward, forward_unpacked, backward, backward_unpacked, none };

template <typename T>
struct TeamPlan {
  int threads = 1;
  std::vector<Range> units;             // per part (one a thread, or several: `claimed`)
  std::vector<Range> rows;              // a rows plan's parts (one a thread): batch rows,
                                        // each through every unit (units[0]); else empty
  std::vector<PanelSet<T>> forward;     // per part: w_hh rows of its units' gates
  std::vector<PanelSet<T>> backward;    // per part: w_hh columns of its units
  std::vector<PanelSet<T>> input;       // per part: w_ih rows of its units' gates (forward)
  WakeTeamAfter wake_after;             // armed when a small loop runs alone for asleep workers

  // Multiply-adds of the recurrent GEMM per step below which one thread runs the whole loop
  // (a barrier costs ~0.3 us). Two threads can win from batch 1 on, each streaming half of
  // w_hh from its own L2: on the 2-core AVX2 machine, quiet, min of 40, LSTM inference
  // 1000x1x128 (65k a step) 8.1 ms on one thread, 4.6 on two. But this machine's two virtual
  // cores often do not run at once (host load), and a lockstep loop then stalls at every step:
  // medians of 11-15 ms instead of 4.5-7.5 at 100x1x256 and 1000x1x128 without take-overs.
  // So a partner that falls behind hands over its part (LoopParts), and for a while after a
  // take-over such small problems run on one thread (taken_over_recently, SoloWindow); with
  // both, the medians of two threads are within 10-20 % of one thread's on a noisy host.
  static constexpr int64_t kWorkPerThread = int64_t(1) << 14;
  // The same for the loops with two barriers a step (projection, original GRU). They split
  // only steps of 2^20 and more while they had no take-over; with it, interleaved calls, min /
  // median ms, one thread -> two: LSTM with P=128 at 100x1x256 1.69/2.35 -> 0.94/2.15 and at
  // 100x8x256 8.94/12.6 -> 6.53/7.89; original GRU 100x1x256 1.75/2.34 -> 0.94/2.22, 100x4x256
  // 3.96/4.84 -> 2.22/3.49. But 1000x1x128 (2^15 a step) 3.72/4.76 -> 3.82/4.85: not below.
  static constexpr int64_t kLockstepWorkPerThread = int64_t(1) << 16;
  // For a while after a take-over (taken_over_recently), steps of fewer multiply-adds run on
  // one thread; so do they while the team's workers sleep (team_awake), and then wake them
  // (WakeTeamAfter) for the next call. A worker woken for the loop itself came to it late, often
  // milliseconds late, after the host had given its core away: LSTM 100x1x256 calls 0.3 s
  // apart, median/p90/mean ms, 5.07/6.35/4.88 -> 4.32/4.67/4.30; 5 ms apart 3.71/5.11/3.95 ->
  // 3.40/3.74/3.42. Unless the workers last woke quickly (team_wakes_fast): on the AVX-512
  // machine (20-28 us, and the woken worker moving off the caller's core) waking them for the
  // loop made calls 0.3 s apart of LSTM 1000x1x128 faster, separate processes alternating,
  // median/mean ms 2.91/2.96 and 2.80/2.82 -> 2.56/2.46 and 2.61/2.67; LSTM 100x1x256 even
  // (1.63/1.63, 1.53/1.61 -> 1.57/1.64, 1.48/1.51), GRU 100x1x256 even (1.00/1.02, 1.11/1.12 ->
  // 1.07/1.11, 1.12/1.12), its least time lower (LSTM 1.44-1.48 -> 1.06-1.08).
  static constexpr int64_t kSmallStepWork = int64_t(1) << 20;
  // A two-thread loop whose threads claim parts step by step (PartClaims) cuts the hidden
  // units into up to kClaimedParts parts of at least kWorkPerPart multiply-adds a step: fine
  // enough that the faster thread can take a fraction of the slower one's share, coarse enough
  // that a claim (a cache line that moves between the cores) stays a small cost. Fewer than
  // four parts: none claimed, one a thread (at batch 1 taking the other thread's only part when
  // it came a little late doubled the step: LSTM 100x1x256, median/mean ms 1.53/1.75 ->
  // 1.78/2.02).
  static constexpr int kClaimedParts = 16;
  static constexpr int64_t kWorkPerPart = int64_t(1) << 18;
  // A loop whose parts may be batch rows (row_bytes > 0: team_forward, team_backward, the original
  // GRU's forward) gives each thread its own rows through every unit for the whole sequence, with
  // no barrier (as ONNX Runtime does), where each thread has at least kRowsPerThread rows and the
  // weights a step multiplies by fit in about one core's L2 (1 MiB: twice its 512 KiB here), from
  // which each thread then streams all of them. The steps at these sizes are short, so the barrier
  // and the wait for the slower thread were a large share of them. LSTM inference, 2 threads,
  // separate processes alternating, 40 calls each, units -> rows, min/median ms: 100x32x128
  // 6.09/8.00 -> 5.53/7.59, 100x64x128 12.27/14.52 -> 10.98/12.59, 100x128x64 7.12/9.69 ->
  // 6.33/7.65, 100x16x128 3.82/6.62 -> 2.98/6.07, 100x32x160 10.67/12.01 -> 8.97/11.26, 100x256x128
  // 48.3/60.0 -> 44.0/51.4; training forward 100x32x128 6.98/8.82 -> 5.74/7.40; GRU 100x64x128
  // 9.16/11.46 -> 8.26/10.29; LSTM backward (60 calls) 100x64x128 26.9/33.9 -> 26.5/31.5, GRU
  // 100x32x128 10.43/12.97 -> 9.38/11.66; the original GRU (p50 of 180 calls) 100x128x64 7.5-9.4 ->
  // 5.1-6.4, even or behind at 100x32x128 and 100x16x128. Mixed beyond 1 MiB (100x32x192,
  // 100x16x256) and at 4 rows a thread (100x8x128 2.51/2.91 -> 2.78/3.08).
  static constexpr int64_t kRowsPerThread = 8;
  static constexpr int64_t kRowsWeightBytes = int64_t(1) << 20;

  // gates G, hidden H, recurrent input size K (H, or P with projection), batch B, lanes per
  // panel, at most max_threads threads (0: the team's size), min_work: kWorkPerThread or
  // kLockstepWorkPerThread; claimed: for a loop whose threads claim their parts (PartClaims),
  // else one part a thread; row_bytes: the weights a step multiplies by, for a loop whose
  // parts may be batch rows (kRowsWeightBytes), else 0.
  TeamPlan(const T* w_hh, int gates, int64_t hidden, int64_t k, int64_t batch, int lanes,
           Panels pack, int max_threads, int64_t min_work = kWorkPerThread,
           bool claimed = false, int64_t row_bytes = 0) {
    const int64_t work = batch * gates * hidden * k;
    threads = static_cast<int>(std::max<int64_t>(
        1, std::min({int64_t(threads_for(max_threads)), hidden / lanes, work / min_work})));
    const bool asleep =
        work < kSmallStepWork && threads > 1 && !team_awake() && !team_wakes_fast();
    if (asleep || (work < kSmallStepWork && taken_over_recently())) threads = 1;
    wake_after = WakeTeamAfter(asleep);
    if (threads > 1 && row_bytes > 0 && row_bytes <= kRowsWeightBytes &&
        batch >= kRowsPerThread * threads) {
      for (int t = 0; t < threads; ++t) rows.push_back(split_range(batch, threads, t));
      units.push_back(Range{0, hidden});
    } else {
      const int parts = claimed && threads == 2 ? claimed_parts(work, hidden, lanes) : threads;
      for (int t = 0; t < parts; ++t) units.push_back(split_range(hidden, parts, t, lanes));
    }
    const int parts = static_cast<int>(units.size());
    if (pack == Panels::forward) {  // hproj[:, gates of u] = h @ w_hh[gates of u]^T
      forward.assign(parts, PanelSet<T>(k, lanes));
      pack_each(forward, gates, [&](int p, const Range& u) {
        forward[p].add_gate_columns(w_hh, k, 1, gates, hidden, u.begin, u.end);
      });
    } else if (pack == Panels::forward_unpacked) {
      forward.assign(parts, PanelSet<T>(k, lanes));
      for (int p = 0; p < parts; ++p)
        forward[p].refer_gate_columns(w_hh, k, gates, hidden, units[p].begin, units[p].end);
    } else if (pack == Panels::backward_unpacked) {
      backward.assign(parts, PanelSet<T>(gates * hidden, lanes));
      for (int p = 0; p < parts; ++p)
        backward[p].refer_columns(w_hh, k, units[p].begin, units[p].end);
    } else if (pack == Panels::backward) {  // dh[:, u] = dG @ w_hh[:, u], over all G*H rows
      backward.assign(parts, PanelSet<T>(gates * hidden, lanes));
      pack_each(backward, 1, [&](int p, const Range& u) {
        backward[p].add_columns(w_hh, 1, k, u.begin, u.end);
      });
    }
  }

  // Packs each part's rows of w_ih [gates*H, I] (all its units' gates), for StepProjection.
  // Null w_ih: none (the projection is computed before the loop); the sets stay empty.
  // unpacked: the same rows, left where they are (as Panels::forward_unpacked).
  TeamPlan&& with_input(const T* w_ih, int gates, int64_t hidden, int64_t in, int lanes,
                        bool unpacked = false) && {
    input.assign(units.size(), PanelSet<T>(in, lanes));
    if (!w_ih) return std::move(*this);
    if (unpacked) {
      for (size_t p = 0; p < units.size(); ++p)
        input[p].refer_gate_columns(w_ih, in, gates, hidden, units[p].begin, units[p].end);
      return std::move(*this);
    }
    pack_each(input, gates, [&](int p, const Range& u) {
      input[p].add_gate_columns(w_ih, in, 1, gates, hidden, u.begin, u.end);
    });
    return std::move(*this);
  }

  // Each part's panels from weights packed once for many calls, read where they are: w_hh's,
  // and w_ih's where the loop projects the input itself (input: StepProjection::loop_weights).
  // For a plan built with Panels::none.
  TeamPlan&& with_packed(const PackedWeights<T>& w, bool input_panels) && {
    forward.assign(units.size(), PanelSet<T>(w.hh.k, w.hh.lanes));
    input.assign(units.size(), PanelSet<T>(w.ih.k, w.ih.lanes));
    for (size_t p = 0; p < units.size(); ++p) {
      forward[p].refer_panels(w.hh, w.panels_of(units[p], w.hh_gates()));
      if (input_panels) input[p].refer_panels(w.ih, w.panels_of(units[p], w.gates));
    }
    return std::move(*this);
  }

 private:
  // How many parts a two-thread loop's threads claim (kClaimedParts): 2 for none claimed.
  static int claimed_parts(int64_t work, int64_t hidden, int lanes) {
    const int64_t parts = std::min({int64_t(kClaimedParts), (hidden + lanes - 1) / lanes,
                                    work / kWorkPerPart});
    return parts >= 4 ? static_cast<int>(parts) : 2;
  }

  // The threads pack the parts' panels (`gates` ranges of each part's units) in parallel,
  // claiming them as the time loop does (the caller from the front, the others from the back),
  // so that a part's pages are first touched (and left in cache) on the core that mostly
  // streams them in the loop, and a worker not there yet leaves its parts to the caller (an
  // elastic job: a late worker does not hold the call up). Allocated here first, so that the
  // workers, which must not throw, never allocate.
  template <typename Pack>
  void pack_each(std::vector<PanelSet<T>>& sets, int gates, Pack pack) {
    const int parts = static_cast<int>(units.size());
    for (int p = 0; p < parts; ++p)
      sets[p].reserve_gate_columns(gates, units[p].begin, units[p].end);
    PartClaims claims(parts);
    parallel_run(threads, [&](int tid, SpinBarrier&) {
      for (int p; (p = claims.claim(0, tid == 0)) >= 0;) pack(p, units[p]);
    }, true);
  }
};

// A forward loop's plan: each part's w_hh panels (`gates` gates of its units; k: H, or P with a
// projection; the original GRU's loop takes r and z here) and, where the loop projects the
// input itself (loop_w_ih, from StepProjection::loop_weights), its w_ih panels (input_gates):
// read from weights packed once for many calls (packed), left unpacked (unpacked_weights_pay),
// or packed for this call. rows_gates: for a loop that may run batch rows as parts
// (TeamPlan::rows; packed or unpacked weights alike), the gates of w_hh its steps multiply by
// (the original GRU's 3, where the plan holds the panels of 2); 0: parts of units only.
template <typename T>
TeamPlan<T> forward_plan(const T* w_hh, int gates, int input_gates, int64_t hidden, int64_t k,
                         int64_t batch, int lanes, int threads, int64_t min_work, bool claimed,
                         const PackedWeights<T>* packed, bool unpacked, const T* loop_w_ih,
                         int64_t input, int rows_gates = 0) {
  const Panels panels =
      packed ? Panels::none : unpacked ? Panels::forward_unpacked : Panels::forward;
  const int64_t row_bytes =
      rows_gates > 0
          ? (rows_gates * k + (loop_w_ih ? input_gates * input : 0)) * hidden * int64_t(sizeof(T))
          : 0;
  TeamPlan<T> plan(w_hh, gates, hidden, k, batch, lanes, panels, threads, min_work, claimed,
                   row_bytes);
  if (packed) return std::move(plan).with_packed(*packed, loop_w_ih != nullptr);
  return std::move(plan).with_input(loop_w_ih, input_gates, hidden, input, lanes, unpacked);
}

template <typename T>
void panel_gemm(const StepKernels<T>& kernels, const PanelSet<T>& panels, int64_t rows,
                const T* a, int64_t lda, T* c, int64_t ldc, bool accumulate,
                const T* bias = nullptr) {
  if (panels.count() == 0) return;
  if (panels.unpacked && panels.unpacked_runs)
    return kernels.column_gemm(rows, panels.k, a, lda, panels.unpacked, panels.unpacked_ld,
                               panels.count(), panels.col.data(), panels.width.data(), c, ldc,
                               accumulate);
  if (panels.unpacked)
    return kernels.row_gemm(rows, panels.k, a, lda, panels.unpacked, panels.unpacked_ld,
                            panels.count(), panels.col.data(), panels.width.data(), bias, c,
                            ldc, accumulate);
  kernels.panel_gemm(rows, panels.k, a, lda, panels.panels(), panels.count(),
                     panels.col.data(), panels.width.data(), bias, c, ldc, accumulate);
}

// The input projection x @ w_ih^T + bias [steps, batch, width]. Inside the team's time loop:
// each thread computes its own gate columns, a chunk of steps at a time just before the loop
// needs them, so the chunk stays in that thread's cache and needs no barrier. But that streams
// w_ih again for every chunk, and w_hh every step: once the two no longer fit in the L3
// together, both come from memory. Then the whole sequence's projection is one BLAS GEMM over
// the team, before the loop, which reads w_ih once and leaves the L3 to w_hh.
template <typename T>
class StepProjection {
 public:
  // recurrent_k: the recurrent weights' reduction length (H, or P with projection).
  StepProjection(const StepOrder& order, int64_t steps, int64_t batch, int64_t width,
                 int64_t input, int64_t recurrent_k, const T* x, const T* w, const T* bias,
                 int threads)
      : order_(order), steps_(steps), batch_(batch), width_(width), input_(input), x_(x), w_(w),
        bias_(bias), whole_(whole_sequence(steps, batch, width, input, recurrent_k)),
        chunk_(whole_ ? steps : chunk_steps(order, steps, batch)), data_(chunk_ * batch * width) {
    if (whole_)
      parallel_gemm<T>(threads, false, true, steps * batch, width, input, x, input, w, input,
                       T(0), data_.data(), width, bias);
  }

  // The w_ih the loop's plan packs into input panels (TeamPlan::with_input): null when the
  // projection is whole, computed before the loop.
  const T* loop_weights() const { return whole_ ? nullptr : w_; }

  // Whether step s starts a chunk, which prepare() then computes.
  bool due(int64_t s) const { return !whole_ && s % chunk_ == 0; }

  // Called by every thread at every step s, before it reads the step's rows.
  void prepare(const StepKernels<T>& kernels, const PanelSet<T>& panels, int64_t s) {
    if (!due(s)) return;
    const int64_t first = first_time(s);
    const int64_t rows = std::min(chunk_, steps_ - s) * batch_;
    for (int64_t r = 0; r < rows; r += kRowBlock)  // row blocks: x stays in L1 across panels
      panel_gemm(kernels, panels, std::min(kRowBlock, rows - r),
                 x_ + (first * batch_ + r) * input_, input_, data_.data() + r * width_, width_,
                 false, bias_);
  }

  // prepare() for the batch rows `rows` only (a rows plan's part, TeamPlan::rows), which are
  // rows apart in each step of the chunk.
  void prepare(const StepKernels<T>& kernels, const PanelSet<T>& panels, int64_t s,
               const Range& rows) {
    if (!due(s)) return;
    const int64_t first = first_time(s), last = first + std::min(chunk_, steps_ - s);
    for (int64_t t = first; t < last; ++t)
      panel_gemm(kernels, panels, rows.size(), x_ + (t * batch_ + rows.begin) * input_, input_,
                 data_.data() + ((t - first) * batch_ + rows.begin) * width_, width_, false,
                 bias_);
  }

  // The projection row of step s, batch row b.
  const T* row(int64_t s, int64_t b) const {
    const int64_t t = order_.time(s, b);
    return data_.data() + ((t - first_time(s - s % chunk_)) * batch_ + b) * width_;
  }

 private:
  static constexpr int64_t kRowBlock = 64;

  // The weights (w_ih and w_hh) above which the projection is whole: half of the L3 of the
  // 2-core EPYC (32 MiB), the rest going to x, the projection chunks and the states. LSTM
  // inference T=50, B=32, 2 threads, min / median ms, chunks -> whole: H=1024 (32 MiB of
  // weights) 199/228 -> 171/189; H=768 (18 MiB) 93/101 -> 89/104; H=640 63/77 -> 64/76. GRU
  // H=1024 (24 MiB) 127/153 -> 119/126. But T=100, B=64, H=512 (8 MiB) 156/183 -> 191/209.
  static constexpr int64_t kL3Bytes = int64_t(16) << 20;
  // The most the whole projection may hold: beyond it (very long sequences) the chunks'
  // bounded memory wins over their speed.
  static constexpr int64_t kMostBytes = int64_t(512) << 20;

  // Rows of one block of prepare() (up to 64) are never whole: the loop reads w_ih once for
  // them, while the BLAS GEMM would pack all of it first. LSTM inference, p10 ms, whole ->
  // chunk: 1x64x1024 13.4-13.5 -> 10.1-10.2, 1x33x1024 10.3-10.9 -> 8.5-8.6, 1x64x768 7.3-7.6
  // -> 5.5-6.2 (ONNX Runtime 7.0-8.6, 4.1-4.7, 3.8-4.6).
  static bool whole_sequence(int64_t steps, int64_t batch, int64_t width, int64_t input,
                             int64_t recurrent_k) {
    const int64_t weights = width * (input + recurrent_k) * int64_t(sizeof(T));
    return steps * batch > kRowBlock && weights > kL3Bytes &&
           steps * batch * width * int64_t(sizeof(T)) <= kMostBytes;
  }

  // About 128 rows a chunk: enough for the GEMM to run at speed, few enough to stay in cache.
  // Scattered steps (reverse with lengths) are no blocks of rows: one chunk of every step.
  static int64_t chunk_steps(const StepOrder& order, int64_t steps, int64_t batch) {
    if (!order.steps_are_blocks()) return steps;
    return std::min<int64_t>(steps, std::max<int64_t>(1, 128 / std::max<int64_t>(batch, 1)));
  }

  // The earliest time of the chunk starting at step s (a whole-sequence chunk starts at 0).
  int64_t first_time(int64_t s) const {
    if (chunk_ == steps_) return 0;
    const int64_t last = std::min(chunk_, steps_ - s) - 1;
    return std::min(order_.block_time(s), order_.block_time(s + last));
  }

  const StepOrder& order_;
  int64_t steps_, batch_, width_, input_;
  const T* x_;
  const T* w_;
  const T* bias_;
  bool whole_;
  int64_t chunk_;
  Scratch<T> data_;
};

}  // namespace fusedrnn::cpu
