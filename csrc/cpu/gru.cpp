// GRU sequence kernels, both variants. linear_before_reset (PyTorch, cuDNN) runs its time loop
// on the thread team like the LSTM: per step each thread's part of the recurrent GEMM on its
// packed w_hh slice, then one fused gate pass over its units; one barrier per step. The
// original GRU applies r before W_hn, so its step is two GEMMs, each followed by its half of
// the gate math; it runs on one thread with the BLAS per step (not yet split).
#include <algorithm>
#include <utility>
#include <vector>

#include "fusedrnn/fusedrnn.hpp"
#include "sequence.hpp"
#include "step_kernels.hpp"
#include "team_loop.hpp"

namespace fusedrnn {
namespace {

using cpu::Range;
using cpu::StepOrder;
using cpu::gemm;
using cpu::row_at;

template <typename T>
struct GruDims {
  int64_t T_, B, I, H, G, S;  // S: width of a saved gate row
  explicit GruDims(const GruProblem<T>& p)
      : T_(p.steps), B(p.batch), I(p.input), H(p.hidden), G(3 * p.hidden),
        S(gru_saved_width(p.linear_before_reset, p.hidden)) {}
};

// linear_before_reset, input projection included (in chunks, per thread; bias: b_ih plus
// b_hr, b_hz). hn holds h0 on entry and the final state on exit.
template <typename T>
void forward_team(const GruProblem<T>& p, const GruDims<T>& d, const StepOrder& order,
                  const T* bias, const T* b_hn, T* y, T* hn, const GruSaved<T>* saved) {
  const auto& kernels = cpu::step_kernels<T>();
  const cpu::TeamPlan<T> plan(p.w_hh, 3, d.H, d.H, d.B, kernels.panel_lanes, false, p.threads,
                              p.w_ih, d.I);
  cpu::StepProjection<T> xproj(order, d.T_, d.B, d.G, d.I, p.x, bias);
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
  cpu::team_forward(plan, xproj, order, d.T_, d.B, H, d.G, y, hn, row, pad);
}

// Padding rows of the original GRU's loop: y is 0, the state is kept, the saved rows zeroed.
template <typename T>
void pad_row(const GruDims<T>& d, const StepOrder& order, int64_t s, int64_t b, T* y,
             const GruSaved<T>* saved) {
  T* yr = row_at(y, order, s, b, d.B, d.H);
  std::fill(yr, yr + d.H, T(0));
  if (!saved) return;
  T* sg = row_at(saved->gates, order, s, b, d.B, d.S);
  T* sh = row_at(saved->h_prev, order, s, b, d.B, d.H);
  std::fill(sg, sg + d.S, T(0));
  std::fill(sh, sh + d.H, T(0));
}

// The original GRU, on one thread: r, z from h @ w_hh[:2H]^T; n from (r * h) @ w_hn^T.
template <typename T>
void forward_original(const GruProblem<T>& p, const GruDims<T>& d, const StepOrder& order,
                      const T* xproj, T* y, T* hn, const GruSaved<T>* saved) {
  const auto& kernels = cpu::step_kernels<T>();
  const int64_t H = d.H;
  std::vector<T> rz(d.B * 2 * H), rh(d.B * H), hnew(d.B * H);
  const T* w_hn = p.w_hh + 2 * H * H;
  for (int64_t s = 0; s < d.T_; ++s) {
    gemm<T>(false, true, d.B, 2 * H, H, hn, H, p.w_hh, H, T(0), rz.data(), 2 * H);
    for (int64_t b = 0; b < d.B; ++b) {
      if (!order.valid(s, b)) {
        std::fill(rh.begin() + b * H, rh.begin() + (b + 1) * H, T(0));
        continue;
      }
      kernels.gru_forward_reset(row_at(xproj, order, s, b, d.B, d.G), rz.data() + b * 2 * H,
                                hn + b * H, rh.data() + b * H, H, H);
    }
    gemm<T>(false, true, d.B, H, H, rh.data(), H, w_hn, H, T(0), hnew.data(), H);
    for (int64_t b = 0; b < d.B; ++b) {
      if (!order.valid(s, b)) {
        pad_row(d, order, s, b, y, saved);
        continue;
      }
      T* hb = hn + b * H;
      if (saved) std::copy(hb, hb + H, row_at(saved->h_prev, order, s, b, d.B, H));
      kernels.gru_forward_new(row_at(xproj, order, s, b, d.B, d.G), rz.data() + b * 2 * H,
                              hnew.data() + b * H, hb, row_at(y, order, s, b, d.B, H),
                              saved ? row_at(saved->gates, order, s, b, d.B, d.S) : nullptr, H,
                              H);
    }
  }
}

// Backward time loop of linear_before_reset: dgx (x side) and dgh (h side) are time-major
// [T, B, 3H]; dh holds dhn on entry and dh0 on exit.
template <typename T>
void backward_team(const GruProblem<T>& p, const GruDims<T>& d, const StepOrder& order,
                   const GruSaved<T>& saved, const T* dy, T* dgx, T* dgh, T* dh) {
  const auto& kernels = cpu::step_kernels<T>();
  const cpu::TeamPlan<T> plan(p.w_hh, 3, d.H, d.H, d.B, kernels.panel_lanes, true, p.threads);
  const int64_t H = d.H;
  auto row = [&](int64_t s, int64_t b, const Range& u, const T* dh_row, T* dg, T* dh_next) {
    kernels.gru_backward_lbr(row_at(saved.gates, order, s, b, d.B, d.S) + u.begin,
                             row_at(saved.h_prev, order, s, b, d.B, H) + u.begin, dh_row, dg,
                             row_at(dgx, order, s, b, d.B, d.G) + u.begin, dh_next, H, u.size());
  };
  cpu::team_backward(plan, order, d.T_, d.B, H, 3, dy, dgh, dh, row);
}

// Backward of the original GRU, on one thread; dg (time-major) serves both the x side and
// the h side, which share their pre-activations here.
template <typename T>
void backward_original(const GruProblem<T>& p, const GruDims<T>& d, const StepOrder& order,
                       const GruSaved<T>& saved, const T* dy, T* dg, T* dh) {
  const auto& kernels = cpu::step_kernels<T>();
  const int64_t H = d.H, G = d.G;
  const bool blocks = order.steps_are_blocks();
  std::vector<T> dstep(blocks ? 0 : d.B * G), dh_next(d.B * H), drh(d.B * H);
  for (int64_t s = d.T_ - 1; s >= 0; --s) {
    T* dg_step = blocks ? dg + order.block_time(s) * d.B * G : dstep.data();
    // First half: dy, the blend, n; the direct dh_prev path goes into dh_next.
    for (int64_t b = 0; b < d.B; ++b) {
      T* dgs = dg_step + b * G;
      T* dhb = dh + b * H;
      if (!order.valid(s, b)) {
        std::fill(dgs, dgs + G, T(0));
        std::copy(dhb, dhb + H, dh_next.begin() + b * H);  // padding passes it through
        continue;
      }
      const T* dyr = row_at(dy, order, s, b, d.B, H);
      for (int64_t j = 0; j < H; ++j) dhb[j] += dyr[j];
      kernels.gru_backward_blend(row_at(saved.gates, order, s, b, d.B, d.S),
                                 row_at(saved.h_prev, order, s, b, d.B, H), dhb, dgs,
                                 dh_next.data() + b * H, H, H);
    }
    // Second half: through r * h, after d(rh) = dg_n @ w_hn.
    gemm<T>(false, false, d.B, H, H, dg_step + 2 * H, G, p.w_hh + 2 * H * H, H, T(0), drh.data(),
            H);
    for (int64_t b = 0; b < d.B; ++b) {
      if (!order.valid(s, b)) continue;
      kernels.gru_backward_reset(row_at(saved.gates, order, s, b, d.B, d.S),
                                 row_at(saved.h_prev, order, s, b, d.B, H), drh.data() + b * H,
                                 dg_step + b * G, dh_next.data() + b * H, H, H);
      if (!blocks) std::copy(dg_step + b * G, dg_step + (b + 1) * G, row_at(dg, order, s, b, d.B, G));
    }
    // n's recurrent path went through r * h above; only r and z remain for this GEMM.
    gemm<T>(false, false, d.B, H, 2 * H, dg_step, G, p.w_hh, H, T(1), dh_next.data(), H);
    std::copy(dh_next.begin(), dh_next.end(), dh);
  }
}

}  // namespace

template <typename T>
void gru_forward(const GruProblem<T>& p, const T* h0, T* y, T* hn, const GruSaved<T>* saved) {
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
  if (p.linear_before_reset) {
    const std::vector<T> bias = cpu::bias_sum(d.G, p.b_ih, b_fold);
    forward_team(p, d, order, bias.empty() ? nullptr : bias.data(), b_hn.data(), y, hn, saved);
    return;
  }
  std::vector<T> xproj(d.T_ * d.B * d.G);
  cpu::input_projection(p.threads, d.T_ * d.B, d.G, d.I, p.x, p.w_ih, p.b_ih, b_fold,
                        xproj.data());
  forward_original(p, d, order, xproj.data(), y, hn, saved);
}

template <typename T>
void gru_backward(const GruProblem<T>& p, const GruSaved<T>& saved, const T* dy, const T* dhn,
                  const GruGrads<T>& g) {
  const GruDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  const int64_t H = d.H, G = d.G, rows = d.T_ * d.B;
  const bool lbr = p.linear_before_reset;

  cpu::copy_or_zero(d.B * H, dhn, g.dh0);  // dh0 carries the gradient through time
  // dgx: gradients of the x-side pre-activations; dgh: of the h-side ones. They differ only in
  // the n block of linear_before_reset (dgh_n = r * dgx_n), so the original GRU shares one.
  std::vector<T> dgx(rows * G, T(0));
  std::vector<T> dgh_own(lbr ? rows * G : 0, T(0));
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
  std::vector<T> rh_all(rows * H);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < H; ++j)
      rh_all[r * H + j] = saved.gates[r * d.S + j] * saved.h_prev[r * H + j];
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
