// GRU sequence kernels, both variants. linear_before_reset (PyTorch, cuDNN) needs one
// recurrent GEMM per step and one fused gate pass; the original GRU applies r before W_hn, so
// its step is two GEMMs, each followed by its half of the gate math.
#include <algorithm>
#include <utility>
#include <vector>

#include "fusedrnn/fusedrnn.hpp"
#include "gate_rows.hpp"
#include "sequence.hpp"

namespace fusedrnn {
namespace {

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

// Padding rows: y is 0, the state is kept, and the saved rows are zeroed so that backward's
// 0 * saved products stay finite.
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

// linear_before_reset: hproj = h @ w_hh^T holds all three recurrent projections.
template <typename T>
void forward_pass_lbr(const GruDims<T>& d, const StepOrder& order, int64_t s, const T* xproj,
                      const T* hproj, const T* b_hn, T* h, T* y, const GruSaved<T>* saved) {
  const auto& kernels = cpu::row_kernels<T>();
  for (int64_t b = 0; b < d.B; ++b) {
    if (!order.valid(s, b)) {
      pad_row(d, order, s, b, y, saved);
      continue;
    }
    T* hb = h + b * d.H;
    if (saved) std::copy(hb, hb + d.H, row_at(saved->h_prev, order, s, b, d.B, d.H));
    kernels.gru_forward_lbr(row_at(xproj, order, s, b, d.B, d.G), hproj + b * d.G, b_hn, hb,
                            row_at(y, order, s, b, d.B, d.H),
                            saved ? row_at(saved->gates, order, s, b, d.B, d.S) : nullptr, d.H,
                            d.H);
  }
}

// Original GRU, first half: r and z from hrz = h @ w_hh[:2H]^T (activated in place), and
// rh = r * h, the input of the second GEMM.
template <typename T>
void forward_pass_reset(const GruDims<T>& d, const StepOrder& order, int64_t s,
                        const T* xproj, T* hrz, const T* h, T* rh) {
  const auto& kernels = cpu::row_kernels<T>();
  for (int64_t b = 0; b < d.B; ++b) {
    if (!order.valid(s, b)) {
      std::fill(rh + b * d.H, rh + (b + 1) * d.H, T(0));
      continue;
    }
    kernels.gru_forward_reset(row_at(xproj, order, s, b, d.B, d.G), hrz + b * 2 * d.H,
                              h + b * d.H, rh + b * d.H, d.H, d.H);
  }
}

// Original GRU, second half: n from hn = (r * h) @ w_hn^T, then the state update.
template <typename T>
void forward_pass_new(const GruDims<T>& d, const StepOrder& order, int64_t s, const T* xproj,
                      const T* rz, const T* hn, T* h, T* y, const GruSaved<T>* saved) {
  const auto& kernels = cpu::row_kernels<T>();
  for (int64_t b = 0; b < d.B; ++b) {
    if (!order.valid(s, b)) {
      pad_row(d, order, s, b, y, saved);
      continue;
    }
    T* hb = h + b * d.H;
    if (saved) std::copy(hb, hb + d.H, row_at(saved->h_prev, order, s, b, d.B, d.H));
    kernels.gru_forward_new(row_at(xproj, order, s, b, d.B, d.G), rz + b * 2 * d.H,
                            hn + b * d.H, hb, row_at(y, order, s, b, d.B, d.H),
                            saved ? row_at(saved->gates, order, s, b, d.B, d.S) : nullptr, d.H,
                            d.H);
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
  std::vector<T> bias_h;
  const T* b_hh_folded = p.b_hh;
  if (p.b_hh && p.linear_before_reset) {
    bias_h.assign(p.b_hh, p.b_hh + d.G);
    std::fill(bias_h.begin() + 2 * H, bias_h.end(), T(0));
    b_hh_folded = bias_h.data();
  }
  std::vector<T> xproj(d.T_ * d.B * d.G);
  cpu::input_projection(d.T_ * d.B, d.G, d.I, p.x, p.w_ih, p.b_ih, b_hh_folded, xproj.data());

  if (p.linear_before_reset) {
    std::vector<T> hproj(d.B * d.G), b_hn(H, T(0));
    if (p.b_hh) std::copy(p.b_hh + 2 * H, p.b_hh + 3 * H, b_hn.begin());
    for (int64_t s = 0; s < d.T_; ++s) {
      gemm<T>(false, true, d.B, d.G, H, hn, H, p.w_hh, H, T(0), hproj.data(), d.G);
      forward_pass_lbr(d, order, s, xproj.data(), hproj.data(), b_hn.data(), hn, y, saved);
    }
    return;
  }
  std::vector<T> rz(d.B * 2 * H), rh(d.B * H), hnew(d.B * H);
  const T* w_hn = p.w_hh + 2 * H * H;
  for (int64_t s = 0; s < d.T_; ++s) {
    gemm<T>(false, true, d.B, 2 * H, H, hn, H, p.w_hh, H, T(0), rz.data(), 2 * H);
    forward_pass_reset(d, order, s, xproj.data(), rz.data(), hn, rh.data());
    gemm<T>(false, true, d.B, H, H, rh.data(), H, w_hn, H, T(0), hnew.data(), H);
    forward_pass_new(d, order, s, xproj.data(), rz.data(), hnew.data(), hn, y, saved);
  }
}

template <typename T>
void gru_backward(const GruProblem<T>& p, const GruSaved<T>& saved, const T* dy, const T* dhn,
                  const GruGrads<T>& g) {
  const GruDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  const int64_t H = d.H, G = d.G, rows = d.T_ * d.B;
  const bool lbr = p.linear_before_reset;
  const bool blocks = order.steps_are_blocks();
  const auto& kernels = cpu::row_kernels<T>();

  std::vector<T> dh(d.B * H), dh_next(d.B * H);
  cpu::copy_or_zero(d.B * H, dhn, dh.data());
  // dgx: gradients of the x-side pre-activations; dgh: of the h-side ones. They differ only in
  // the n block of linear_before_reset (dgh_n = r * dgx_n), so the original GRU shares one.
  std::vector<T> dgx(rows * G, T(0));
  std::vector<T> dgh_own(lbr ? rows * G : 0, T(0));
  T* dgh = lbr ? dgh_own.data() : dgx.data();
  std::vector<T> dstep(blocks ? 0 : d.B * G);
  std::vector<T> drh(lbr ? 0 : d.B * H);  // original GRU: gradient of r * h

  for (int64_t s = d.T_ - 1; s >= 0; --s) {
    T* dgh_step = blocks ? dgh + order.block_time(s) * d.B * G : dstep.data();
    // Pass 1: dy, the blend, n; the direct dh_prev path goes into dh_next.
    for (int64_t b = 0; b < d.B; ++b) {
      T* dgs = dgh_step + b * G;
      T* dhn_b = dh_next.data() + b * H;
      T* dhb = dh.data() + b * H;
      if (!order.valid(s, b)) {
        std::fill(dgs, dgs + G, T(0));
        std::copy(dhb, dhb + H, dhn_b);  // padding passes the gradient through
        continue;
      }
      const T* dyr = row_at(dy, order, s, b, d.B, H);
      for (int64_t j = 0; j < H; ++j) dhb[j] += dyr[j];
      const T* gt = row_at(saved.gates, order, s, b, d.B, d.S);
      const T* hp = row_at(saved.h_prev, order, s, b, d.B, H);
      if (lbr)
        kernels.gru_backward_lbr(gt, hp, dhb, dgs, row_at(dgx.data(), order, s, b, d.B, G), dhn_b,
                                 H, H);
      else
        kernels.gru_backward_blend(gt, hp, dhb, dgs, dhn_b, H, H);
    }
    if (!lbr) {
      // Pass 2 (original GRU): through r * h, after d(rh) = dg_n @ w_hn.
      gemm<T>(false, false, d.B, H, H, dgh_step + 2 * H, G, p.w_hh + 2 * H * H, H, T(0),
              drh.data(), H);
      for (int64_t b = 0; b < d.B; ++b) {
        if (!order.valid(s, b)) continue;
        kernels.gru_backward_reset(row_at(saved.gates, order, s, b, d.B, d.S),
                                   row_at(saved.h_prev, order, s, b, d.B, H), drh.data() + b * H,
                                   dgh_step + b * G, dh_next.data() + b * H, H, H);
      }
      // n's recurrent path went through r * h above; only r and z remain for the GEMM below.
    }
    if (!blocks) {
      for (int64_t b = 0; b < d.B; ++b) {
        if (!order.valid(s, b)) continue;
        const T* dgs = dgh_step + b * G;
        std::copy(dgs, dgs + G, row_at(dgh, order, s, b, d.B, G));
      }
    }
    const int64_t k = lbr ? G : 2 * H;
    gemm<T>(false, false, d.B, H, k, dgh_step, G, p.w_hh, H, T(1), dh_next.data(), H);
    std::swap(dh, dh_next);
  }
  std::copy(dh.begin(), dh.end(), g.dh0);

  gemm<T>(true, false, G, d.I, rows, dgx.data(), G, p.x, d.I, T(0), g.dw_ih, d.I);
  gemm<T>(false, false, rows, d.I, G, dgx.data(), G, p.w_ih, d.I, T(0), g.dx, d.I);
  cpu::column_sums(rows, G, dgx.data(), g.db_ih);
  cpu::column_sums(rows, G, dgh, g.db_hh);
  if (lbr) {
    gemm<T>(true, false, G, H, rows, dgh, G, saved.h_prev, H, T(0), g.dw_hh, H);
    return;
  }
  // Original GRU: rows r, z of dw_hh see h_prev; rows n see r * h_prev (recomputed).
  gemm<T>(true, false, 2 * H, H, rows, dgh, G, saved.h_prev, H, T(0), g.dw_hh, H);
  std::vector<T> rh_all(rows * H);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < H; ++j)
      rh_all[r * H + j] = saved.gates[r * d.S + j] * saved.h_prev[r * H + j];
  gemm<T>(true, false, H, H, rows, dgh + 2 * H, G, rh_all.data(), H, T(0), g.dw_hh + 2 * H * H,
          H);
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
