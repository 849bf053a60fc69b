// GRU sequence kernels, both variants, on the thread team like the LSTM: each thread runs
// slices of hidden units (its own, or those it claims each step) and does per step their part
// of the input projection (a chunk of steps at a time), of the recurrent GEMM on their packed
// w_hh slices, and the fused gate pass.
// linear_before_reset (PyTorch, cuDNN) needs one barrier per step, and up to three rows in all
// (T * B <= 3) run the direct loops (direct_loop.hpp: no packing); the original GRU applies r
// before W_hn, so its step is two GEMMs, each followed by its half of the gate math, and two
// barriers.
#include <algorithm>
#include <utility>
#include <vector>

#include "argument_checks.hpp"
#include "fusedrnn/fusedrnn.hpp"
#include "scratch.hpp"
#include "sequence.hpp"
#include "step_kernels.hpp"
#include "team_loop.hpp"
#include "time_loops.hpp"

namespace fusedrnn {
namespace {

using cpu::Range;
using cpu::StepOrder;
using cpu::row_at;

template <typename T>
struct GruDims {
  int64_t T_, B, I, H, G, S;  // S: width of a saved gate row
  explicit GruDims(const GruProblem<T>& p)
      : T_(p.steps), B(p.batch), I(p.input), H(p.hidden), G(3 * p.hidden),
        S(gru_saved_width(p.linear_before_reset, p.hidden)) {}
};

// linear_before_reset, input projection included (bias: b_ih plus b_hr, b_hz; forward_loop:
// on the team or direct). hn holds h0 on entry and the final state on exit.
template <typename T>
void forward_team(const GruProblem<T>& p, const GruDims<T>& d, const StepOrder& order,
                  const T* bias, const T* b_hn, T* y, T* hn, const GruSaved<T>* saved) {
  const auto& kernels = cpu::step_kernels<T>();
  const int64_t H = d.H;
  auto row = [&](int64_t s, int64_t b, const Range& u, const T* xr, const T* hr, const T* h,
                 T* h_next, T* yr) {
    T* sg = nullptr;
    if (saved) {
      sg = row_at(saved->gates, order, s, b, d.B, d.S) + u.begin;
      std::copy(h, h + u.size(), row_at(saved->h_prev, order, s, b, d.B, H) + u.begin);
    }
    kernels.gru_forward_lbr(xr, hr, b_hn + u.begin, h, h_next, yr, sg, H, u.size());
  };
  auto pad = [&](int64_t s, int64_t b, const Range& u) {
    if (!saved) return;  // never read by backward, but must be finite (0 * x there)
    cpu::fill_gates(row_at(saved->gates, order, s, b, d.B, d.S) + u.begin, 4, H, u.size(), T(0));
    T* sh = row_at(saved->h_prev, order, s, b, d.B, H) + u.begin;
    std::fill(sh, sh + u.size(), T(0));
  };
  cpu::forward_loop(p.x, d.I, p.w_ih, bias, p.w_hh, 3, p.packed, order, d.T_, d.B, H,
                    p.threads, y, hn, row, pad);
}

// The original GRU on the team: per step, each thread's r, z columns of h @ w_hh[:2H]^T and
// r * h for its units; a barrier; its n columns of (r * h) @ w_hn^T and the state update
// (in place: every read of h this step is behind the first barrier); a barrier. Or, in a rows
// plan (TeamPlan::rows), each thread both halves of every step for its batch rows and every
// unit, with no barrier.
template <typename T>
void forward_original(const GruProblem<T>& p, const GruDims<T>& d, const StepOrder& order,
                      const T* bias, T* y, T* hn, const GruSaved<T>* saved) {
  const auto& kernels = cpu::step_kernels<T>();
  const int lanes = kernels.panel_lanes;
  const int64_t H = d.H, G = d.G;
  const bool unpacked =
      !p.packed && cpu::unpacked_weights_pay(d.T_, d.B, G * (d.I + H) * int64_t(sizeof(T)));
  cpu::StepProjection<T> xproj(order, d.T_, d.B, G, d.I, H, p.x, p.w_ih, bias, p.threads);
  const auto plan = cpu::forward_plan(p.w_hh, 2, 3, H, H, d.B, lanes, p.threads,
                                      cpu::TeamPlan<T>::kLockstepWorkPerThread, false, p.packed,
                                      unpacked, xproj.loop_weights(), d.I, /*rows_gates=*/3);
  std::vector<cpu::PanelSet<T>> reset;  // per part: w_hn rows of its units
  for (const Range& u : plan.units) {
    reset.emplace_back(H, lanes);
    if (p.packed)
      reset.back().refer_panels(p.packed->hn, p.packed->panels_of(u, 1));
    else if (unpacked)
      reset.back().refer_gate_columns(p.w_hh, H, 1, H, 2 * H + u.begin, 2 * H + u.end);
    else
      reset.back().add_columns(p.w_hh, H, 1, 2 * H + u.begin, 2 * H + u.end);
  }
  std::vector<T> hproj(d.B * G), rh(d.B * H);  // hproj: W_hr h, W_hz h, W_hn (r * h)

  // Step s's first half for part `part` (its units u) and batch rows [r0, r1): r, z and r * h.
  auto reset_half = [&](int64_t s, int part, int64_t r0, int64_t r1) {
    const Range u = plan.units[part];
    const int64_t n = u.size();
    cpu::panel_gemm(kernels, plan.forward[part], r1 - r0, hn + r0 * H, H,
                    hproj.data() + r0 * G, G, false);
    for (int64_t b = r0; b < r1; ++b) {
      T* rhb = rh.data() + b * H + u.begin;
      if (order.valid(s, b))
        kernels.gru_forward_reset(xproj.row(s, b) + u.begin, hproj.data() + b * G + u.begin,
                                  hn + b * H + u.begin, rhb, H, n);
      else
        std::fill(rhb, rhb + n, T(0));
    }
  };
  // Its second half: n and the state update.
  auto new_half = [&](int64_t s, int part, int64_t r0, int64_t r1) {
    const Range u = plan.units[part];
    const int64_t n = u.size();
    cpu::panel_gemm(kernels, reset[part], r1 - r0, rh.data() + r0 * H, H,
                    hproj.data() + r0 * G, G, false);
    for (int64_t b = r0; b < r1; ++b) {
      T* hb = hn + b * H + u.begin;
      T* yr = row_at(y, order, s, b, d.B, H) + u.begin;
      T* sg = saved ? row_at(saved->gates, order, s, b, d.B, d.S) + u.begin : nullptr;
      T* sh = saved ? row_at(saved->h_prev, order, s, b, d.B, H) + u.begin : nullptr;
      if (!order.valid(s, b)) {  // padding: the state carries over, y is 0
        std::fill(yr, yr + n, T(0));
        if (saved) {  // never read by backward, but must be finite (0 * x there)
          cpu::fill_gates(sg, 3, H, n, T(0));
          std::fill(sh, sh + n, T(0));
        }
        continue;
      }
      if (sh) std::copy(hb, hb + n, sh);
      const T* hr = hproj.data() + b * G + u.begin;
      kernels.gru_forward_new(xproj.row(s, b) + u.begin, hr, hr + 2 * H, hb, yr, sg, H, n);
    }
  };

  if (!plan.rows.empty()) {
    return cpu::run_row_parts(plan, [&](const Range& r) {
      for (int64_t s = 0; s < d.T_; ++s) {
        xproj.prepare(kernels, plan.input[0], s, r);
        reset_half(s, 0, r.begin, r.end);
        new_half(s, 0, r.begin, r.end);
      }
    });
  }
  cpu::parallel_run(plan.threads, [&](int tid, cpu::SpinBarrier& barrier) {
    cpu::LoopParts parts(tid, plan.threads, barrier);
    for (int64_t s = 0; s < d.T_; ++s) {
      for (int part = parts.first(); part < parts.last(); ++part) {
        if (xproj.due(s)) parts.one_off([&] { xproj.prepare(kernels, plan.input[part], s); });
        reset_half(s, part, 0, d.B);
      }
      if (!parts.sync(barrier, 2 * (d.T_ - 1 - s) + 1)) return;
      for (int part = parts.first(); part < parts.last(); ++part) new_half(s, part, 0, d.B);
      if (!parts.sync(barrier, 2 * (d.T_ - 1 - s))) return;
    }
  }, true);
}

// Backward time loop of linear_before_reset (backward_loop: on the team or direct): dgx (x
// side) and dgh (h side) are time-major [T, B, 3H]; dh holds dhn on entry and dh0 on exit.
template <typename T>
void backward_team(const GruProblem<T>& p, const GruDims<T>& d, const StepOrder& order,
                   const GruSaved<T>& saved, const T* dy, T* dgx, T* dgh, T* dh) {
  const auto& kernels = cpu::step_kernels<T>();
  const int64_t H = d.H;
  auto row = [&](int64_t s, int64_t b, const Range& u, const T* dh_row, T* dg, T* dh_next) {
    kernels.gru_backward_lbr(row_at(saved.gates, order, s, b, d.B, d.S) + u.begin,
                             row_at(saved.h_prev, order, s, b, d.B, H) + u.begin, dh_row, dg,
                             row_at(dgx, order, s, b, d.B, d.G) + u.begin, dh_next, H, u.size());
  };
  cpu::backward_loop(p.w_hh, 3, order, d.T_, d.B, H, p.threads, dy, dgh, dh, row);
}

// Backward of the original GRU on the team; dg (time-major) serves both the x side and the h
// side, which share their pre-activations here. Per step and thread: dy, the blend and n for
// its units; a barrier; d(r * h) = dg_n @ w_hn for its units, then r; a barrier; its columns
// of dh_prev += dg_rz @ w_hh[:2H]. dh holds dhn on entry and dh0 on exit.
template <typename T>
void backward_original(const GruProblem<T>& p, const GruDims<T>& d, const StepOrder& order,
                       const GruSaved<T>& saved, const T* dy, T* dg, T* dh) {
  const auto& kernels = cpu::step_kernels<T>();
  const int lanes = kernels.panel_lanes;
  const int64_t H = d.H, G = d.G;
  const bool blocks = order.steps_are_blocks();
  const cpu::TeamPlan<T> plan(p.w_hh, 2, H, H, d.B, lanes, cpu::Panels::none, p.threads,
                              cpu::TeamPlan<T>::kLockstepWorkPerThread);
  std::vector<cpu::PanelSet<T>> through_reset, through_rz;  // per thread, columns of its units
  for (const Range& u : plan.units) {
    through_reset.emplace_back(H, lanes);  // w_hn[:, u]
    through_reset.back().add_columns(p.w_hh + 2 * H * H, 1, H, u.begin, u.end);
    through_rz.emplace_back(2 * H, lanes);  // w_hh[:2H, u]
    through_rz.back().add_columns(p.w_hh, 1, H, u.begin, u.end);
  }
  std::vector<T> dstep(blocks ? 0 : 2 * d.B * G), other(d.B * H), drh(d.B * H);

  cpu::parallel_run(plan.threads, [&](int tid, cpu::SpinBarrier& barrier) {
    cpu::LoopParts parts(tid, plan.threads, barrier);
    T* dh_cur = dh;
    T* dh_next = other.data();
    for (int64_t s = d.T_ - 1; s >= 0; --s) {
      T* dg_step = blocks ? dg + order.block_time(s) * d.B * G : dstep.data() + (s & 1) * d.B * G;
      for (int part = parts.first(); part < parts.last(); ++part) {
        const Range u = plan.units[part];
        const int64_t n = u.size();
        for (int64_t b = 0; b < d.B; ++b) {
          T* dgs = dg_step + b * G + u.begin;
          T* dhc = dh_cur + b * H + u.begin;
          T* dhx = dh_next + b * H + u.begin;
          if (!order.valid(s, b)) {  // padding: the gradient passes through
            cpu::fill_gates(dgs, 3, H, n, T(0));
            std::copy(dhc, dhc + n, dhx);
            continue;
          }
          const T* dyr = row_at(dy, order, s, b, d.B, H) + u.begin;
          for (int64_t j = 0; j < n; ++j) dhc[j] += dyr[j];
          kernels.gru_backward_blend(row_at(saved.gates, order, s, b, d.B, d.S) + u.begin,
                                     row_at(saved.h_prev, order, s, b, d.B, H) + u.begin, dhc,
                                     dgs, dhx, H, n);
        }
      }
      if (!parts.sync(barrier, 2 * s + 1)) return;
      for (int part = parts.first(); part < parts.last(); ++part) {
        const Range u = plan.units[part];
        const int64_t n = u.size();
        cpu::panel_gemm(kernels, through_reset[part], d.B, dg_step + 2 * H, G, drh.data(), H,
                        false);
        for (int64_t b = 0; b < d.B; ++b) {
          if (!order.valid(s, b)) continue;
          T* dgs = dg_step + b * G + u.begin;
          kernels.gru_backward_reset(row_at(saved.gates, order, s, b, d.B, d.S) + u.begin,
                                     row_at(saved.h_prev, order, s, b, d.B, H) + u.begin,
                                     drh.data() + b * H + u.begin, dgs,
                                     dh_next + b * H + u.begin, H, n);
          if (!blocks) cpu::copy_gates(dgs, row_at(dg, order, s, b, d.B, G) + u.begin, 3, H, n);
        }
      }
      if (!parts.sync(barrier, 2 * s)) return;
      for (int part = parts.first(); part < parts.last(); ++part)
        cpu::panel_gemm(kernels, through_rz[part], d.B, dg_step, G, dh_next, H, true);
      std::swap(dh_cur, dh_next);
    }
    for (int part = parts.first(); part < parts.last(); ++part)
      cpu::settle_columns(dh_cur, dh, d.B, H, plan.units[part].begin, plan.units[part].end);
  }, true);
}

}  // namespace

template <typename T>
void gru_forward(const GruProblem<T>& p, const T* h0, T* y, T* hn, const GruSaved<T>* saved) {
  cpu::check_forward(p, h0, y, hn, saved);
  const GruDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  const int64_t H = d.H;
  cpu::copy_or_zero(d.B * H, h0, hn);  // hn holds the running state
  if (d.T_ == 0 || d.B == 0) return;

  // b_hn sits inside r * (...) for linear_before_reset, so only b_hr, b_hz fold into xproj.
  std::vector<T> b_hh_folded, b_hn(H, T(0));
  const T* b_fold = p.b_hh;
  if (p.b_hh && p.linear_before_reset) {
    b_hh_folded.assign(p.b_hh, p.b_hh + d.G);
    std::fill(b_hh_folded.begin() + 2 * H, b_hh_folded.end(), T(0));
    std::copy(p.b_hh + 2 * H, p.b_hh + 3 * H, b_hn.begin());
    b_fold = b_hh_folded.data();
  }
  const std::vector<T> bias = cpu::bias_sum(d.G, p.b_ih, b_fold);
  const T* b = bias.empty() ? nullptr : bias.data();
  if (p.linear_before_reset)
    forward_team(p, d, order, b, b_hn.data(), y, hn, saved);
  else
    forward_original(p, d, order, b, y, hn, saved);
}

template <typename T>
void gru_backward(const GruProblem<T>& p, const GruSaved<T>& saved, const T* dy, const T* dhn,
                  const GruGrads<T>& g) {
  cpu::check_backward(p, saved, dy, dhn, g);
  const GruDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  const int64_t H = d.H, G = d.G, rows = d.T_ * d.B;
  const bool lbr = p.linear_before_reset;

  cpu::copy_or_zero(d.B * H, dhn, g.dh0);  // dh0 carries the gradient through time
  // dgx: gradients of the x-side pre-activations; dgh: of the h-side ones. They differ only in
  // the n block of linear_before_reset (dgh_n = r * dgx_n), so the original GRU shares one.
  cpu::Scratch<T> dgx(rows * G), dgh_own(lbr ? rows * G : 0);
  if (p.lengths) {  // not every padding row is written
    dgx.fill(T(0));
    dgh_own.fill(T(0));
  }
  T* dgh = lbr ? dgh_own.data() : dgx.data();
  if (rows > 0) {
    if (lbr)
      backward_team(p, d, order, saved, dy, dgx.data(), dgh, g.dh0);
    else
      backward_original(p, d, order, saved, dy, dgx.data(), g.dh0);
  }

  cpu::parallel_gemm<T>(p.threads, true, false, G, d.I, rows, dgx.data(), G, p.x, d.I, T(0), g.dw_ih, d.I);
  cpu::parallel_gemm<T>(p.threads, false, false, rows, d.I, G, dgx.data(), G, p.w_ih, d.I, T(0), g.dx, d.I);
  cpu::column_sums(rows, G, dgx.data(), g.db_ih);
  cpu::column_sums(rows, G, dgh, g.db_hh);
  if (lbr) {
    cpu::parallel_gemm<T>(p.threads, true, false, G, H, rows, dgh, G, saved.h_prev, H, T(0), g.dw_hh, H);
    return;
  }
  // Original GRU: rows r, z of dw_hh see h_prev; rows n see r * h_prev (recomputed).
  cpu::parallel_gemm<T>(p.threads, true, false, 2 * H, H, rows, dgh, G, saved.h_prev, H, T(0), g.dw_hh, H);
  cpu::Scratch<T> rh_all(rows * H);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < H; ++j)
      rh_all.data()[r * H + j] = saved.gates[r * d.S + j] * saved.h_prev[r * H + j];
  cpu::parallel_gemm<T>(p.threads, true, false, H, H, rows, dgh + 2 * H, G, rh_all.data(), H, T(0),
                        g.dw_hh + 2 * H * H, H);
}

template void gru_forward<float>(const GruProblem<float>&, const float*, float*, float*,
                                 const GruSaved<float>*);
template void gru_forward<double>(const GruProblem<double>&, const double*, double*, double*,
                                  const GruSaved<double>*);
template void gru_backward<float>(const GruProblem<float>&, const GruSaved<float>&, const float*,
                                  const float*, const GruGrads<float>&);
template void gru_backward<double>(const GruProblem<double>&, const GruSaved<double>&,
                                   const double*, const double*, const GruGrads<double>&);

}  // namespace fusedrnn
