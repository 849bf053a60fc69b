// The time loops that the LSTM and GRU share, run on the thread team: each thread owns the
// hidden units plan.units[tid]; one barrier per step. The cells supply what happens to a row.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "sequence.hpp"
#include "team_plan.hpp"
#include "step_kernels.hpp"
#include "take_over_policy.hpp"
#include "thread_team.hpp"

namespace fusedrnn::cpu {

// The parts (plan.units indices) a thread runs in a time loop: its own, until it takes over
// the whole loop from a partner that has lost its core (SpinBarrier::wait_or_take_over).
//
// With two threads, a worker that is not there when the loop starts does not hold it up: the
// caller runs every part alone, and lets the worker in after the barrier call at which it
// finds it asking (LateJoin); until then the worker runs no part and waits at no barrier.
// A worker woken for the loop often came to it milliseconds late on this virtual machine.
// Run elastic (parallel_run), so that a worker that never comes is not waited for either.
class LoopParts {
 public:
  LoopParts(int tid, int threads, SpinBarrier& barrier)
      : first(tid), last(tid + 1), tid_(tid), threads_(threads), shared_(threads > 1),
        synced_(now_ns()), join_(threads == 2 ? &barrier.join : nullptr) {
    if (!join_) return;
    if (tid == 0) {
      if (join_->asked_within(kJoinWaitNs)) {
        join_->decide(0);
        return;
      }
      first = 0, last = threads, shared_ = false, alone_ = true;
      return;
    }
    join_->ask();
    join_at_ = join_->wait_decision();
    if (join_at_ != 0) first = last = 0, shared_ = false;
  }

  // A caller that ran alone to the end lets no worker in any more.
  ~LoopParts() {
    if (alone_) join_->decide(LateJoin::kNever);
  }
  LoopParts(const LoopParts&) = delete;
  LoopParts& operator=(const LoopParts&) = delete;

  // The step's barrier, or none once alone. False: leave the loop now (another thread has
  // taken it over). steps_left: how many barriers come after this one (the steps left, in
  // the loops with one barrier a step); a "step" is the time from one to the next, all this
  // thread's work of it, whichever side of the barrier it lies. How long to wait for a late
  // partner: take_over_wait.
  bool sync(SpinBarrier& barrier, int64_t steps_left) {
    ++syncs_;
    const int64_t one_off = std::exchange(one_off_ns_, 0);
    if (alone_ && join_->asked()) {  // let the worker in: from here each runs its own part
      join_->decide(syncs_);
      alone_ = false, first = 0, last = 1, shared_ = true, synced_ = now_ns();
      return true;
    }
    if (tid_ > 0 && syncs_ == join_at_) {  // let in
      first = tid_, last = tid_ + 1, shared_ = true, synced_ = now_ns();
      return true;
    }
    if (!shared_) return true;
    const int64_t patience =
        take_over_wait(take_over_patience(), now_ns() - synced_, one_off, steps_left);
    const SpinBarrier::Turn turn = barrier.wait_or_take_over(patience);
    synced_ = now_ns();
    switch (turn) {
      case SpinBarrier::Turn::together:
        return true;
      case SpinBarrier::Turn::leave:
        return false;
      case SpinBarrier::Turn::solo:
        break;
    }
    first = 0;
    last = threads_;
    shared_ = false;
    return true;
  }

  // Runs this step's one-off work (a chunk of the input projection, every few steps), which
  // the steps left will not repeat (take_over_wait).
  template <typename Work>
  void one_off(Work work) {
    const int64_t start = now_ns();
    work();
    one_off_ns_ += now_ns() - start;
  }

  int first, last;

 private:
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // How long the caller looks for its worker before it starts alone: a worker that is awake
  // comes within microseconds.
  static constexpr int64_t kJoinWaitNs = 50000;

  int tid_;
  int threads_;
  bool shared_;
  int64_t synced_;
  int64_t one_off_ns_ = 0;
  LateJoin* join_;
  bool alone_ = false;   // the caller, running every part until its worker joins
  int64_t join_at_ = 0;  // the worker: the barrier call after which it has its part
  int64_t syncs_ = 0;    // barrier calls so far
};

// Forward. Per step and thread: its chunk of the input projection, its columns of
// hproj = h @ w_hh^T, then for every batch row
//   valid:   row(s, b, u, xr, hr, h, h_next, y)   xr, hr: [G*H] rows offset to u.begin
//   padding: pad(s, b, u)                          (h_next = h and y = 0 are done here)
// where h, h_next, y are the n = u.size() values of the thread's units. state [B, H] holds
// h0 on entry and the final state on exit.
template <typename T, typename Row, typename Pad>
void team_forward(const TeamPlan<T>& plan, StepProjection<T>& xproj, const StepOrder& order,
                  int64_t steps, int64_t batch, int64_t H, int64_t G, T* y, T* state, Row row,
                  Pad pad) {
  const auto& kernels = step_kernels<T>();
  std::vector<T> other(batch * H), hproj(batch * G);
  parallel_run(plan.threads, [&](int tid, SpinBarrier& barrier) {
    LoopParts parts(tid, plan.threads, barrier);
    T* h = state;
    T* h_next = other.data();
    for (int64_t s = 0; s < steps; ++s) {
      for (int part = parts.first; part < parts.last; ++part) {
        const Range u = plan.units[part];
        const int64_t n = u.size();
        parts.one_off([&] { xproj.prepare(kernels, plan.input[part], s); });
        panel_gemm(kernels, plan.forward[part], batch, h, H, hproj.data(), G, false);
        for (int64_t b = 0; b < batch; ++b) {
          const T* hb = h + b * H + u.begin;
          T* hx = h_next + b * H + u.begin;
          T* yr = row_at(y, order, s, b, batch, H) + u.begin;
          if (order.valid(s, b)) {
            row(s, b, u, xproj.row(s, b) + u.begin, hproj.data() + b * G + u.begin, hb, hx, yr);
          } else {  // padding: the state carries over, y is 0
            std::copy(hb, hb + n, hx);
            std::fill(yr, yr + n, T(0));
            pad(s, b, u);
          }
        }
      }
      if (!parts.sync(barrier, steps - 1 - s)) return;
      std::swap(h, h_next);
    }
    for (int part = parts.first; part < parts.last; ++part)
      settle_columns(h, state, batch, H, plan.units[part].begin, plan.units[part].end);
  }, true);
}

// Backward. Per step (last to first) and thread, for every valid batch row
//   row(s, b, u, dh, dg, dh_next)
// with dh the n values of the total gradient of the step's output (dy is added here), dg the
// row's h-side pre-activation gradients (gate stride H, offset to u.begin) and dh_next the
// direct part of the previous state's gradient (0 when there is none); padding rows pass dh
// through. After the barrier the thread adds its columns of dg @ w_hh to dh_next. dgh is
// time-major [T, B, gates*H]; dh [B, H] holds dhn on entry and dh0 on exit.
template <typename T, typename Row>
void team_backward(const TeamPlan<T>& plan, const StepOrder& order, int64_t steps, int64_t batch,
                   int64_t H, int gates, const T* dy, T* dgh, T* dh, Row row) {
  const auto& kernels = step_kernels<T>();
  const int64_t G = gates * H;
  const bool blocks = order.steps_are_blocks();
  // Scattered steps (reverse with lengths) gather their rows here; two buffers, so that a
  // thread may start step s - 1 while another still reads step s's.
  std::vector<T> dstep(blocks ? 0 : 2 * batch * G), other(batch * H);
  parallel_run(plan.threads, [&](int tid, SpinBarrier& barrier) {
    LoopParts parts(tid, plan.threads, barrier);
    T* dh_cur = dh;
    T* dh_next = other.data();
    for (int64_t s = steps - 1; s >= 0; --s) {
      T* dg_step = blocks ? dgh + order.block_time(s) * batch * G
                          : dstep.data() + (s & 1) * batch * G;
      for (int part = parts.first; part < parts.last; ++part) {
        const Range u = plan.units[part];
        const int64_t n = u.size();
        for (int64_t b = 0; b < batch; ++b) {
          T* dg = dg_step + b * G + u.begin;
          T* dhc = dh_cur + b * H + u.begin;
          T* dhx = dh_next + b * H + u.begin;
          if (!order.valid(s, b)) {  // padding: the gradient passes through
            fill_gates(dg, gates, H, n, T(0));
            std::copy(dhc, dhc + n, dhx);
            continue;
          }
          const T* dyr = row_at(dy, order, s, b, batch, H) + u.begin;
          for (int64_t j = 0; j < n; ++j) dhc[j] += dyr[j];
          row(s, b, u, dhc, dg, dhx);
          if (!blocks) copy_gates(dg, row_at(dgh, order, s, b, batch, G) + u.begin, gates, H, n);
        }
      }
      if (!parts.sync(barrier, s)) return;
      for (int part = parts.first; part < parts.last; ++part)
        panel_gemm(kernels, plan.backward[part], batch, dg_step, G, dh_next, H, true);
      std::swap(dh_cur, dh_next);
    }
    for (int part = parts.first; part < parts.last; ++part)
      settle_columns(dh_cur, dh, batch, H, plan.units[part].begin, plan.units[part].end);
  }, true);
}

}  // namespace fusedrnn::cpu
