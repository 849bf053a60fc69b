// The time loops that the LSTM and GRU share, run on the thread team: each step's parts (ranges
// of hidden units, plan.units) are shared among the threads (LoopParts); one barrier per step.
// The cells supply what happens to a row.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "part_claims.hpp"
#include "sequence.hpp"
#include "team_plan.hpp"
#include "step_kernels.hpp"
#include "take_over_policy.hpp"
#include "thread_team.hpp"

namespace fusedrnn::cpu {

// The parts (plan.units indices) a thread runs in each step of a time loop, one after another
// (next()): its own share, or with two threads and PartClaims those it claims; all of them
// once it has taken over the loop from a partner that has lost its core
// (SpinBarrier::wait_or_take_over). A part is the same computation whichever thread runs it.
//
// With two threads, a worker that is not there when the loop starts does not hold it up: the
// caller runs every part alone, and lets the worker in after the barrier call at which it
// finds it asking (LateJoin); until then the worker runs no part and waits at no barrier.
// A worker woken for the loop often came to it milliseconds late on this virtual machine.
// Run elastic (parallel_run), so that a worker that never comes is not waited for either.
class LoopParts {
 public:
  // parts: plan.units.size() (0: one a thread); claims: shared by a two-thread loop's threads
  // (null: each runs its own share, parts * tid / threads to parts * (tid + 1) / threads).
  LoopParts(int tid, int threads, SpinBarrier& barrier, int parts = 0,
            PartClaims* claims = nullptr)
      : tid_(tid), parts_(parts > 0 ? parts : threads), shared_(threads > 1),
        synced_(now_ns()), join_(threads == 2 ? &barrier.join : nullptr),
        claims_(threads == 2 && parts_ > threads ? claims : nullptr) {
    run(int64_t(parts_) * tid / threads, int64_t(parts_) * (tid + 1) / threads);
    if (!join_) return;
    if (tid == 0) {
      if (join_->asked_within(kJoinWaitNs)) {
        join_->decide(0);
        return;
      }
      run(0, parts_);
      shared_ = false, alone_ = true;
      return;
    }
    join_->ask();
    join_at_ = join_->wait_decision();
    if (join_at_ != 0) run(0, 0), shared_ = false;
  }

  // A caller that ran alone to the end lets no worker in any more.
  ~LoopParts() {
    if (alone_) join_->decide(LateJoin::kNever);
  }
  LoopParts(const LoopParts&) = delete;
  LoopParts& operator=(const LoopParts&) = delete;

  // Its own parts now [first(), last()), for loops without claims (those with two barriers a
  // step run them twice between two barriers).
  int first() const { return first_; }
  int last() const { return last_; }

  // The next part this thread runs in this step (or after the loop's last barrier); -1: none.
  int next() {
    if (shared_ && claims_) {
      const int part = claims_->claim(syncs_, tid_ == 0);
      if (tid_ > 0 && part >= 0) wait_claim_delay();
      return part;
    }
    return next_ < last_ ? next_++ : -1;
  }

  // The step's barrier, or none once alone. False: leave the loop now (another thread has
  // taken it over). steps_left: how many barriers come after this one (the steps left, in
  // the loops with one barrier a step); a "step" is the time from one to the next, all this
  // thread's work of it, whichever side of the barrier it lies. How long to wait for a late
  // partner: take_over_wait.
  bool sync(SpinBarrier& barrier, int64_t steps_left) {
    if (!pass(barrier, steps_left)) return false;
    next_ = first_;
    if (claims_ && tid_ == 0) claims_->refill(syncs_ - 1);
    return true;
  }

  // Runs this step's one-off work (a chunk of the input projection, every few steps), which
  // the steps left will not repeat (take_over_wait). Only for steps that have such work: it
  // reads the clock twice.
  template <typename Work>
  void one_off(Work work) {
    const int64_t start = now_ns();
    work();
    one_off_ns_ += now_ns() - start;
  }

 private:
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void run(int64_t first, int64_t last) {
    first_ = next_ = static_cast<int>(first);
    last_ = static_cast<int>(last);
  }

  bool pass(SpinBarrier& barrier, int64_t steps_left) {
    ++syncs_;
    const int64_t one_off = std::exchange(one_off_ns_, 0);
    if (alone_ && join_->asked()) {  // let the worker in: from here each runs its own parts
      join_->decide(syncs_);
      alone_ = false, shared_ = true, synced_ = now_ns();
      run(0, parts_ / 2);
      return true;
    }
    if (tid_ > 0 && syncs_ == join_at_) {  // let in
      shared_ = true, synced_ = now_ns();
      run(parts_ / 2, parts_);
      return true;
    }
    if (!shared_) return true;
    const SpinBarrier::Turn turn =
        barrier.wait_or_take_over(Patience{take_over_patience(), synced_, one_off, steps_left});
    synced_ = now_ns();
    switch (turn) {
      case SpinBarrier::Turn::together:
        return true;
      case SpinBarrier::Turn::leave:
        return false;
      case SpinBarrier::Turn::solo:
        break;
    }
    run(0, parts_);
    shared_ = false;
    return true;
  }

  // How long the caller looks for its worker before it starts alone: a worker that is awake
  // comes within microseconds.
  static constexpr int64_t kJoinWaitNs = 50000;

  int tid_;
  int parts_;
  bool shared_;
  int first_ = 0, next_ = 0, last_ = 0;  // this thread's own parts (when it claims none)
  int64_t synced_;
  int64_t one_off_ns_ = 0;
  LateJoin* join_;
  PartClaims* claims_;
  bool alone_ = false;   // the caller, running every part until its worker joins
  int64_t join_at_ = 0;  // the worker: the barrier call after which it has its parts
  int64_t syncs_ = 0;    // barrier calls so far
};

// The parts a thread ran in a step: a run of them (its own share, every part, or those it
// claimed, all from the front or all from the back), whose units are contiguous, so that its
// gate pass is one call a row (with a call a part and row, 16 parts at 100x16x256, median/mean
// ms: LSTM inference 17.8/17.8 against 15.7/16.6, training 51.6/52.3 against 42.1/43.9).
class PartRun {
 public:
  void add(int part) {
    first_ = std::min(first_, part);
    end_ = std::max(end_, part + 1);
  }
  Range units(const std::vector<Range>& of) const {
    return first_ < end_ ? Range{of[first_].begin, of[end_ - 1].end} : Range{0, 0};
  }

 private:
  int first_ = std::numeric_limits<int>::max(), end_ = 0;
};

// Step s of a forward time loop over units u, after hproj [B, G] = h @ w_hh^T: for every batch
// row of `rows`, row(...) where it is valid (xrow(s, b): the row's input projection), else the
// state carries over, y is 0 and pad(s, b, u) (see team_forward).
template <typename T, typename XRow, typename Row, typename Pad>
void forward_rows(const XRow& xrow, const StepOrder& order, int64_t s, int64_t batch,
                  const Range& rows, int64_t H, int64_t G, const Range& u, const T* hproj,
                  const T* h, T* h_next, T* y, Row& row, Pad& pad) {
  const int64_t n = u.size();
  for (int64_t b = rows.begin; n > 0 && b < rows.end; ++b) {
    const T* hb = h + b * H + u.begin;
    T* hx = h_next + b * H + u.begin;
    T* yr = row_at(y, order, s, b, batch, H) + u.begin;
    if (order.valid(s, b)) {
      row(s, b, u, xrow(s, b) + u.begin, hproj + b * G + u.begin, hb, hx, yr);
    } else {  // padding: the state carries over, y is 0
      std::copy(hb, hb + n, hx);
      std::fill(yr, yr + n, T(0));
      pad(s, b, u);
    }
  }
}

// Runs part(rows) for each part of a rows plan (TeamPlan::rows), each a range of batch rows
// that runs through every unit for the whole sequence with no barrier. The plan's threads
// claim the parts, so that a worker that comes late, or not at all, leaves its part to the
// caller.
template <typename T, typename Part>
void run_row_parts(const TeamPlan<T>& plan, Part part) {
  PartClaims claims(static_cast<int>(plan.rows.size()));
  parallel_run(plan.threads, [&](int tid, SpinBarrier&) {
    if (tid > 0) wait_join_delay();
    for (int p; (p = claims.claim(0, tid == 0)) >= 0;) part(plan.rows[p]);
  }, true);
}

// The forward of a rows plan: each part has its own rows of the state, the projection chunks
// and hproj. Each output is the same sum as in a plan of units.
template <typename T, typename Row, typename Pad>
void team_forward_rows(const TeamPlan<T>& plan, StepProjection<T>& xproj,
                       const StepOrder& order, int64_t steps, int64_t batch, int64_t H,
                       int64_t G, T* y, T* state, Row& row, Pad& pad) {
  const auto& kernels = step_kernels<T>();
  std::vector<T> other(batch * H), hproj(batch * G);
  run_row_parts(plan, [&](const Range& r) {
    T* h = state;
    T* h_next = other.data();
    for (int64_t s = 0; s < steps; ++s) {
      xproj.prepare(kernels, plan.input[0], s, r);
      panel_gemm(kernels, plan.forward[0], r.size(), h + r.begin * H, H,
                 hproj.data() + r.begin * G, G, false);
      forward_rows([&](int64_t t, int64_t b) { return xproj.row(t, b); }, order, s, batch, r, H,
                   G, plan.units[0], hproj.data(), h, h_next, y, row, pad);
      std::swap(h, h_next);
    }
    settle_columns(h + r.begin * H, state + r.begin * H, r.size(), H, 0, H);
  });
}

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
  if (!plan.rows.empty())
    return team_forward_rows(plan, xproj, order, steps, batch, H, G, y, state, row, pad);
  const auto& kernels = step_kernels<T>();
  std::vector<T> other(batch * H), hproj(batch * G);
  const int parts_count = static_cast<int>(plan.units.size());
  PartClaims claims(parts_count);
  parallel_run(plan.threads, [&](int tid, SpinBarrier& barrier) {
    LoopParts parts(tid, plan.threads, barrier, parts_count, &claims);
    T* h = state;
    T* h_next = other.data();
    for (int64_t s = 0; s < steps; ++s) {
      PartRun run;
      for (int part; (part = parts.next()) >= 0; run.add(part)) {
        if (xproj.due(s)) parts.one_off([&] { xproj.prepare(kernels, plan.input[part], s); });
        panel_gemm(kernels, plan.forward[part], batch, h, H, hproj.data(), G, false);
      }
      forward_rows([&](int64_t t, int64_t b) { return xproj.row(t, b); }, order, s, batch,
                   Range{0, batch}, H, G, run.units(plan.units), hproj.data(), h, h_next, y, row,
                   pad);
      if (!parts.sync(barrier, steps - 1 - s)) return;
      std::swap(h, h_next);
    }
    for (int part; (part = parts.next()) >= 0;)
      settle_columns(h, state, batch, H, plan.units[part].begin, plan.units[part].end);
  }, true);
}

// Where a backward loop's step s writes its gate gradients [B, G]: dgh's time block when the
// steps are blocks; else (reverse with lengths) one of two gathering buffers, since a step's
// row passes write one while the recurrent GEMMs read the other (the step after's).
template <typename T>
class StepGateGradients {
 public:
  StepGateGradients(const StepOrder& order, int64_t batch, int64_t G, T* dgh)
      : order_(order), blocks_(order.steps_are_blocks()), batch_(batch), G_(G), dgh_(dgh),
        gather_(blocks_ ? 0 : 2 * batch * G), gathered_(gather_.data()) {}
  StepGateGradients(const StepGateGradients&) = delete;
  bool blocks() const { return blocks_; }
  T* operator()(int64_t s) const {
    return blocks_ ? dgh_ + order_.block_time(s) * batch_ * G_
                   : gathered_ + (s & 1) * batch_ * G_;
  }

 private:
  const StepOrder& order_;
  bool blocks_;
  int64_t batch_, G_;
  T* dgh_;
  std::vector<T> gather_;
  T* gathered_;  // gather_'s buffer, which the loop writes
};

// Step s of a backward time loop over units u, after the step after's recurrent gradient is in
// dh_cur: for every batch row of `rows`, dy is added and row(...) runs where it is valid, else
// the gradient passes through (see team_backward).
template <typename T, typename Row>
void backward_rows(const StepOrder& order, int64_t s, int64_t batch, const Range& rows,
                   int64_t H, int gates, const Range& u, const T* dy,
                   const StepGateGradients<T>& dg_of, T* dgh, T* dh_cur, T* dh_next, Row& row) {
  const int64_t G = gates * H, n = u.size();
  T* dg_step = dg_of(s);
  for (int64_t b = rows.begin; n > 0 && b < rows.end; ++b) {
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
    if (!dg_of.blocks())
      copy_gates(dg, row_at(dgh, order, s, b, batch, G) + u.begin, gates, H, n);
  }
}

// The backward of a rows plan (run_row_parts): each part runs every step, last to first; the
// rows of dg_of(s) and of the state gradient that it reads are those it wrote.
template <typename T, typename Row>
void team_backward_rows(const TeamPlan<T>& plan, const StepOrder& order, int64_t steps,
                        int64_t batch, int64_t H, int gates, const T* dy, T* dgh, T* dh,
                        Row& row) {
  const auto& kernels = step_kernels<T>();
  const int64_t G = gates * H;
  const StepGateGradients<T> dg_of(order, batch, G, dgh);
  std::vector<T> other(batch * H);
  run_row_parts(plan, [&](const Range& r) {
    T* dh_cur = dh;
    T* dh_next = other.data();
    auto recurrent = [&](int64_t s) {  // step s's part of the gradient of the state before it
      panel_gemm(kernels, plan.backward[0], r.size(), dg_of(s) + r.begin * G, G,
                 dh_cur + r.begin * H, H, true);
    };
    for (int64_t s = steps - 1; s >= 0; --s) {
      if (s + 1 < steps) recurrent(s + 1);
      backward_rows(order, s, batch, r, H, gates, plan.units[0], dy, dg_of, dgh, dh_cur,
                    dh_next, row);
      std::swap(dh_cur, dh_next);
    }
    if (steps > 0) recurrent(0);
    settle_columns(dh_cur + r.begin * H, dh + r.begin * H, r.size(), H, 0, H);
  });
}

// Backward. Per step (last to first) and thread, for every valid batch row
//   row(s, b, u, dh, dg, dh_next)
// with dh the n values of the total gradient of the step's output (dy is added here), dg the
// row's h-side pre-activation gradients (gate stride H, offset to u.begin) and dh_next the
// direct part of the previous state's gradient (0 when there is none); padding rows pass dh
// through. After the step's barrier, the thread that takes a part in the next step first adds
// the part's columns of dg @ w_hh to the state gradient that its row pass then reads (the two
// are one part: whoever runs the one runs the other). dgh is time-major [T, B, gates*H]; dh
// [B, H] holds dhn on entry and dh0 on exit.
template <typename T, typename Row>
void team_backward(const TeamPlan<T>& plan, const StepOrder& order, int64_t steps, int64_t batch,
                   int64_t H, int gates, const T* dy, T* dgh, T* dh, Row row) {
  if (!plan.rows.empty())
    return team_backward_rows(plan, order, steps, batch, H, gates, dy, dgh, dh, row);
  const auto& kernels = step_kernels<T>();
  const int64_t G = gates * H;
  const StepGateGradients<T> dg_of(order, batch, G, dgh);
  std::vector<T> other(batch * H);
  const int parts_count = static_cast<int>(plan.units.size());
  PartClaims claims(parts_count);
  parallel_run(plan.threads, [&](int tid, SpinBarrier& barrier) {
    LoopParts parts(tid, plan.threads, barrier, parts_count, &claims);
    T* dh_cur = dh;
    T* dh_next = other.data();
    for (int64_t s = steps - 1; s >= 0; --s) {
      PartRun run;
      for (int part; (part = parts.next()) >= 0; run.add(part)) {
        if (s + 1 < steps)  // the step after's recurrent gradient, for these units
          panel_gemm(kernels, plan.backward[part], batch, dg_of(s + 1), G, dh_cur, H, true);
      }
      backward_rows(order, s, batch, Range{0, batch}, H, gates, run.units(plan.units), dy, dg_of,
                    dgh, dh_cur, dh_next, row);
      if (!parts.sync(barrier, s)) return;
      std::swap(dh_cur, dh_next);
    }
    for (int part; (part = parts.next()) >= 0;) {
      if (steps > 0) panel_gemm(kernels, plan.backward[part], batch, dg_of(0), G, dh_cur, H, true);
      settle_columns(dh_cur, dh, batch, H, plan.units[part].begin, plan.units[part].end);
    }
  }, true);
}

}  // namespace fusedrnn::cpu
