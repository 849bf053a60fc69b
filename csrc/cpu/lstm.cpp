// LSTM sequence kernels: one input-projection GEMM per call, then per step one recurrent GEMM
// and one fused pass over the gates (activations, cell update and, when training, what
// backward needs). Backward mirrors it and ends in the weight-gradient GEMMs.
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
struct LstmDims {
  int64_t T_, B, I, H, P, G;
  explicit LstmDims(const LstmProblem<T>& p)
      : T_(p.steps), B(p.batch), I(p.input), H(p.hidden), P(p.proj), G(4 * p.hidden) {}
};

// The gate pass of forward step s. Writes c in place, the new hidden value to h_out (the
// state itself, or the projection's input), y for unprojected valid rows, and the saved block.
template <typename T>
void forward_gate_pass(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                       int64_t s, const T* xproj, const T* hproj, T* h, T* c, T* h_out,
                       T* y, const LstmSaved<T>* saved) {
  const auto& kernels = cpu::row_kernels<T>();
  const int64_t H = d.H;
  for (int64_t b = 0; b < d.B; ++b) {
    const bool valid = order.valid(s, b);
    T* sg = saved ? row_at(saved->gates, order, s, b, d.B, d.G) : nullptr;
    T* sc = saved ? row_at(saved->c_prev, order, s, b, d.B, H) : nullptr;
    if (saved) {
      T* sh = row_at(saved->h_prev, order, s, b, d.B, d.P);
      if (valid) {
        std::copy(h + b * d.P, h + (b + 1) * d.P, sh);
      } else {  // padding: backward never reads it, but it must be finite (0 * x there)
        std::fill(sg, sg + d.G, T(0));
        std::fill(sc, sc + H, T(0));
        std::fill(sh, sh + d.P, T(0));
      }
    }
    T* yr = row_at(y, order, s, b, d.B, d.P);
    if (!valid) {
      std::fill(yr, yr + d.P, T(0));
      continue;
    }
    T* hout = h_out + b * H;
    kernels.lstm_forward(row_at(xproj, order, s, b, d.B, d.G), hproj + b * d.G, c + b * H, hout,
                         sg, sc, H, H);
    if (!p.w_hr) std::copy(hout, hout + H, yr);
  }
}

// h = w_hr @ h_tilde for valid rows (padding rows keep their state), y likewise.
template <typename T>
void project_step(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                  int64_t s, const T* h_tilde, T* scratch, T* h, T* y) {
  gemm<T>(false, true, d.B, d.P, d.H, h_tilde, d.H, p.w_hr, d.H, T(0), scratch, d.P);
  for (int64_t b = 0; b < d.B; ++b) {
    if (!order.valid(s, b)) continue;
    const T* src = scratch + b * d.P;
    std::copy(src, src + d.P, h + b * d.P);
    std::copy(src, src + d.P, row_at(y, order, s, b, d.B, d.P));
  }
}

}  // namespace

template <typename T>
void lstm_forward(const LstmProblem<T>& p, const T* h0, const T* c0, T* y, T* hn, T* cn,
                  const LstmSaved<T>* saved) {
  const LstmDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  const bool proj = p.w_hr != nullptr;
  cpu::copy_or_zero(d.B * d.P, h0, hn);  // hn and cn hold the running state
  cpu::copy_or_zero(d.B * d.H, c0, cn);
  if (d.T_ == 0 || d.B == 0) return;

  std::vector<T> xproj(d.T_ * d.B * d.G);
  cpu::input_projection(d.T_ * d.B, d.G, d.I, p.x, p.w_ih, p.b_ih, p.b_hh, xproj.data());
  std::vector<T> hproj(d.B * d.G);
  std::vector<T> h_tilde(proj ? d.B * d.H : 0), proj_out(proj ? d.B * d.P : 0);

  for (int64_t s = 0; s < d.T_; ++s) {
    gemm<T>(false, true, d.B, d.G, d.P, hn, d.P, p.w_hh, d.P, T(0), hproj.data(), d.G);
    forward_gate_pass(p, d, order, s, xproj.data(), hproj.data(), hn, cn,
                      proj ? h_tilde.data() : hn, y, saved);
    if (proj) project_step(p, d, order, s, h_tilde.data(), proj_out.data(), hn, y);
  }
}

template <typename T>
void lstm_backward(const LstmProblem<T>& p, const LstmSaved<T>& saved, const T* dy,
                   const T* dhn, const T* dcn, const LstmGrads<T>& g) {
  const LstmDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  const bool proj = p.w_hr != nullptr;
  const int64_t rows = d.T_ * d.B;
  const auto& kernels = cpu::row_kernels<T>();

  std::vector<T> dh(d.B * d.P), dh_next(d.B * d.P);
  cpu::copy_or_zero(d.B * d.P, dhn, dh.data());
  cpu::copy_or_zero(d.B * d.H, dcn, g.dc0);  // dc0 carries dc through the loop

  std::vector<T> dgates(rows * d.G, T(0));  // time-major, for the weight GEMMs
  std::vector<T> dstep(order.steps_are_blocks() ? 0 : d.B * d.G);
  // Projection: the gradient reaching each step's output and the projection's input, both
  // step-major (any order serves dW_hr = sum_t dh_t^T h_tilde_t, as long as they agree).
  std::vector<T> dh_out(proj ? rows * d.P : 0), h_tilde(proj ? rows * d.H : 0);
  std::vector<T> dh_tilde(proj ? d.B * d.H : 0);

  for (int64_t s = d.T_ - 1; s >= 0; --s) {
    for (int64_t b = 0; b < d.B; ++b) {
      if (!order.valid(s, b)) continue;
      const T* dyr = row_at(dy, order, s, b, d.B, d.P);
      for (int64_t j = 0; j < d.P; ++j) dh[b * d.P + j] += dyr[j];
    }
    if (proj) {
      T* dho = dh_out.data() + s * d.B * d.P;
      for (int64_t b = 0; b < d.B; ++b) {
        const bool valid = order.valid(s, b);
        for (int64_t j = 0; j < d.P; ++j) dho[b * d.P + j] = valid ? dh[b * d.P + j] : T(0);
      }
      gemm<T>(false, false, d.B, d.H, d.P, dho, d.P, p.w_hr, d.H, T(0), dh_tilde.data(), d.H);
    }

    T* dg_step = order.steps_are_blocks() ? dgates.data() + order.block_time(s) * d.B * d.G
                                          : dstep.data();
    for (int64_t b = 0; b < d.B; ++b) {
      T* dg = dg_step + b * d.G;
      T* ht = proj ? h_tilde.data() + (s * d.B + b) * d.H : nullptr;
      if (!order.valid(s, b)) {
        std::fill(dg, dg + d.G, T(0));
        if (ht) std::fill(ht, ht + d.H, T(0));
        continue;
      }
      const T* dht = proj ? dh_tilde.data() + b * d.H : dh.data() + b * d.P;
      kernels.lstm_backward(row_at(saved.gates, order, s, b, d.B, d.G),
                            row_at(saved.c_prev, order, s, b, d.B, d.H), dht, g.dc0 + b * d.H,
                            dg, ht, d.H, d.H);
      if (!order.steps_are_blocks())
        std::copy(dg, dg + d.G, row_at(dgates.data(), order, s, b, d.B, d.G));
    }

    // dh for the previous step: dG @ w_hh; padding rows pass their gradient through.
    T beta = T(0);
    if (order.has_padding()) {
      beta = T(1);
      for (int64_t b = 0; b < d.B; ++b) {
        const bool valid = order.valid(s, b);
        for (int64_t j = 0; j < d.P; ++j) dh_next[b * d.P + j] = valid ? T(0) : dh[b * d.P + j];
      }
    }
    gemm<T>(false, false, d.B, d.P, d.G, dg_step, d.G, p.w_hh, d.P, beta, dh_next.data(), d.P);
    std::swap(dh, dh_next);
  }
  std::copy(dh.begin(), dh.end(), g.dh0);

  // The weight and input gradients: one GEMM each over all T*B rows.
  gemm<T>(true, false, d.G, d.I, rows, dgates.data(), d.G, p.x, d.I, T(0), g.dw_ih, d.I);
  gemm<T>(false, false, rows, d.I, d.G, dgates.data(), d.G, p.w_ih, d.I, T(0), g.dx, d.I);
  gemm<T>(true, false, d.G, d.P, rows, dgates.data(), d.G, saved.h_prev, d.P, T(0), g.dw_hh,
          d.P);
  cpu::column_sums(rows, d.G, dgates.data(), g.db_ih);
  cpu::column_sums(rows, d.G, dgates.data(), g.db_hh);
  if (proj)
    gemm<T>(true, false, d.P, d.H, rows, dh_out.data(), d.P, h_tilde.data(), d.H, T(0), g.dw_hr,
            d.H);
}

template void lstm_forward<float>(const LstmProblem<float>&, const float*, const float*, float*,
                                  float*, float*, const LstmSaved<float>*);
template void lstm_forward<double>(const LstmProblem<double>&, const double*, const double*,
                                   double*, double*, double*, const LstmSaved<double>*);
template void lstm_backward<float>(const LstmProblem<float>&, const LstmSaved<float>&,
                                   const float*, const float*, const float*,
                                   const LstmGrads<float>&);
template void lstm_backward<double>(const LstmProblem<double>&, const LstmSaved<double>&,
                                    const double*, const double*, const double*,
                                    const LstmGrads<double>&);

}  // namespace fusedrnn
