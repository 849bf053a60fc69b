// LSTM sequence kernels: one input-projection GEMM per call, then the time loop, then (in
// backward) the weight-gradient GEMMs. The time loop runs on the thread team: each thread owns
// a slice of hidden units, keeps its packed slice of w_hh in its own cache, and per step does
// its part of the recurrent GEMM and the fused gate pass; one barrier per step.
// With a projection the loop runs on one thread with the BLAS per step (not yet split).
#include <algorithm>
#include <tuple>
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
struct LstmDims {
  int64_t T_, B, I, H, P, G;
  explicit LstmDims(const LstmProblem<T>& p)
      : T_(p.steps), B(p.batch), I(p.input), H(p.hidden), P(p.proj), G(4 * p.hidden) {}
};

// The time loop without projection, input projection included (in chunks, per thread). hn
// holds h0 on entry and the final state on exit; cn likewise for c.
template <typename T>
void forward_team(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                  const T* bias, T* y, T* hn, T* cn, const LstmSaved<T>* saved) {
  const auto& kernels = cpu::step_kernels<T>();
  const cpu::TeamPlan<T> plan(p.w_hh, 4, d.H, d.H, d.B, kernels.panel_lanes, false, p.threads,
                              p.w_ih, d.I);
  cpu::StepProjection<T> xproj(order, d.T_, d.B, d.G, d.I, p.x, bias);
  const int64_t H = d.H;
  auto saved_rows = [&](int64_t s, int64_t b, const Range& u) {
    return std::make_tuple(row_at(saved->gates, order, s, b, d.B, d.G) + u.begin,
                           row_at(saved->c_prev, order, s, b, d.B, H) + u.begin,
                           row_at(saved->h_prev, order, s, b, d.B, H) + u.begin);
  };
  auto row = [&](int64_t s, int64_t b, const Range& u, const T* xr, const T* hr, const T* h,
                 T* h_next, T* yr) {
    T *sg = nullptr, *sc = nullptr, *sh = nullptr;
    if (saved) {
      std::tie(sg, sc, sh) = saved_rows(s, b, u);
      std::copy(h, h + u.size(), sh);
    }
    kernels.lstm_forward(xr, hr, cn + b * H + u.begin, h_next, sg, sc, H, u.size());
    std::copy(h_next, h_next + u.size(), yr);
  };
  auto pad = [&](int64_t s, int64_t b, const Range& u) {
    if (!saved) return;  // never read by backward, but must be finite (0 * x there)
    auto [sg, sc, sh] = saved_rows(s, b, u);
    cpu::fill_gates(sg, 4, H, u.size(), T(0));
    std::fill(sc, sc + u.size(), T(0));
    std::fill(sh, sh + u.size(), T(0));
  };
  cpu::team_forward(plan, xproj, order, d.T_, d.B, H, d.G, y, hn, row, pad);
}

// The time loop with projection, on one thread: gate pass into h_tilde, then h = w_hr h_tilde.
template <typename T>
void forward_projected(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                       const T* xproj, T* y, T* hn, T* cn, const LstmSaved<T>* saved) {
  const auto& kernels = cpu::step_kernels<T>();
  std::vector<T> hproj(d.B * d.G), h_tilde(d.B * d.H), h_proj(d.B * d.P);
  for (int64_t s = 0; s < d.T_; ++s) {
    gemm<T>(false, true, d.B, d.G, d.P, hn, d.P, p.w_hh, d.P, T(0), hproj.data(), d.G);
    for (int64_t b = 0; b < d.B; ++b) {
      const bool valid = order.valid(s, b);
      T* sg = saved ? row_at(saved->gates, order, s, b, d.B, d.G) : nullptr;
      T* sc = saved ? row_at(saved->c_prev, order, s, b, d.B, d.H) : nullptr;
      T* sh = saved ? row_at(saved->h_prev, order, s, b, d.B, d.P) : nullptr;
      if (!valid) {
        if (saved) {
          std::fill(sg, sg + d.G, T(0));
          std::fill(sc, sc + d.H, T(0));
          std::fill(sh, sh + d.P, T(0));
        }
        continue;
      }
      if (saved) std::copy(hn + b * d.P, hn + (b + 1) * d.P, sh);
      kernels.lstm_forward(row_at(xproj, order, s, b, d.B, d.G), hproj.data() + b * d.G,
                           cn + b * d.H, h_tilde.data() + b * d.H, sg, sc, d.H, d.H);
    }
    gemm<T>(false, true, d.B, d.P, d.H, h_tilde.data(), d.H, p.w_hr, d.H, T(0), h_proj.data(),
            d.P);
    for (int64_t b = 0; b < d.B; ++b) {
      T* yr = row_at(y, order, s, b, d.B, d.P);
      if (!order.valid(s, b)) {
        std::fill(yr, yr + d.P, T(0));
        continue;
      }
      const T* src = h_proj.data() + b * d.P;
      std::copy(src, src + d.P, hn + b * d.P);
      std::copy(src, src + d.P, yr);
    }
  }
}

// Backward time loop without projection. dgates is time-major [T, B, 4H]; dh holds dhn on
// entry and dh0 on exit; dc likewise.
template <typename T>
void backward_team(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                   const LstmSaved<T>& saved, const T* dy, T* dgates, T* dh, T* dc) {
  const auto& kernels = cpu::step_kernels<T>();
  const cpu::TeamPlan<T> plan(p.w_hh, 4, d.H, d.H, d.B, kernels.panel_lanes, true, p.threads);
  const int64_t H = d.H;
  auto row = [&](int64_t s, int64_t b, const Range& u, const T* dh_row, T* dg, T* dh_next) {
    kernels.lstm_backward(row_at(saved.gates, order, s, b, d.B, d.G) + u.begin,
                          row_at(saved.c_prev, order, s, b, d.B, H) + u.begin, dh_row,
                          dc + b * H + u.begin, dg, nullptr, H, u.size());
    std::fill(dh_next, dh_next + u.size(), T(0));  // the LSTM's h reaches h_prev via w_hh only
  };
  cpu::team_backward(plan, order, d.T_, d.B, H, 4, dy, dgates, dh, row);
}

// Backward with projection, on one thread. dh_out and h_tilde (both step-major) collect what
// dW_hr = sum_t dh_t^T h_tilde_t needs.
template <typename T>
void backward_projected(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                        const LstmSaved<T>& saved, const T* dy, T* dgates, T* dh, T* dc,
                        T* dh_out, T* h_tilde) {
  const auto& kernels = cpu::step_kernels<T>();
  const bool blocks = order.steps_are_blocks();
  std::vector<T> dstep(blocks ? 0 : d.B * d.G), dh_next(d.B * d.P), dh_tilde(d.B * d.H);
  for (int64_t s = d.T_ - 1; s >= 0; --s) {
    T* dho = dh_out + s * d.B * d.P;
    for (int64_t b = 0; b < d.B; ++b) {
      const bool valid = order.valid(s, b);
      const T* dyr = row_at(dy, order, s, b, d.B, d.P);
      for (int64_t j = 0; j < d.P; ++j) {
        if (valid) dh[b * d.P + j] += dyr[j];
        dho[b * d.P + j] = valid ? dh[b * d.P + j] : T(0);
      }
    }
    gemm<T>(false, false, d.B, d.H, d.P, dho, d.P, p.w_hr, d.H, T(0), dh_tilde.data(), d.H);
    T* dg_step = blocks ? dgates + order.block_time(s) * d.B * d.G : dstep.data();
    for (int64_t b = 0; b < d.B; ++b) {
      T* dg = dg_step + b * d.G;
      T* ht = h_tilde + (s * d.B + b) * d.H;
      const bool valid = order.valid(s, b);
      for (int64_t j = 0; j < d.P; ++j) dh_next[b * d.P + j] = valid ? T(0) : dh[b * d.P + j];
      if (!valid) {
        std::fill(dg, dg + d.G, T(0));
        std::fill(ht, ht + d.H, T(0));
        continue;
      }
      kernels.lstm_backward(row_at(saved.gates, order, s, b, d.B, d.G),
                            row_at(saved.c_prev, order, s, b, d.B, d.H),
                            dh_tilde.data() + b * d.H, dc + b * d.H, dg, ht, d.H, d.H);
      if (!blocks) std::copy(dg, dg + d.G, row_at(dgates, order, s, b, d.B, d.G));
    }
    gemm<T>(false, false, d.B, d.P, d.G, dg_step, d.G, p.w_hh, d.P, T(1), dh_next.data(), d.P);
    std::copy(dh_next.begin(), dh_next.end(), dh);
  }
}

}  // namespace

template <typename T>
void lstm_forward(const LstmProblem<T>& p, const T* h0, const T* c0, T* y, T* hn, T* cn,
                  const LstmSaved<T>* saved) {
  const LstmDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  cpu::copy_or_zero(d.B * d.P, h0, hn);  // hn and cn hold the running state
  cpu::copy_or_zero(d.B * d.H, c0, cn);
  if (d.T_ == 0 || d.B == 0) return;

  if (!p.w_hr) {
    const std::vector<T> bias = cpu::bias_sum(d.G, p.b_ih, p.b_hh);
    forward_team(p, d, order, bias.empty() ? nullptr : bias.data(), y, hn, cn, saved);
    return;
  }
  std::vector<T> xproj(d.T_ * d.B * d.G);
  cpu::input_projection(p.threads, d.T_ * d.B, d.G, d.I, p.x, p.w_ih, p.b_ih, p.b_hh,
                        xproj.data());
  forward_projected(p, d, order, xproj.data(), y, hn, cn, saved);
}

template <typename T>
void lstm_backward(const LstmProblem<T>& p, const LstmSaved<T>& saved, const T* dy,
                   const T* dhn, const T* dcn, const LstmGrads<T>& g) {
  const LstmDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  const bool proj = p.w_hr != nullptr;
  const int64_t rows = d.T_ * d.B;

  cpu::copy_or_zero(d.B * d.P, dhn, g.dh0);  // dh0 and dc0 carry the gradients through time
  cpu::copy_or_zero(d.B * d.H, dcn, g.dc0);
  std::vector<T> dgates(rows * d.G, T(0));  // time-major, for the weight GEMMs
  std::vector<T> dh_out(proj ? rows * d.P : 0), h_tilde(proj ? rows * d.H : 0);
  if (rows > 0) {
    if (proj)
      backward_projected(p, d, order, saved, dy, dgates.data(), g.dh0, g.dc0, dh_out.data(),
                         h_tilde.data());
    else
      backward_team(p, d, order, saved, dy, dgates.data(), g.dh0, g.dc0);
  }

  // The weight and input gradients: one GEMM each over all T*B rows.
  cpu::parallel_gemm<T>(p.threads, true, false, d.G, d.I, rows, dgates.data(), d.G, p.x, d.I, T(0),
                        g.dw_ih, d.I);
  cpu::parallel_gemm<T>(p.threads, false, false, rows, d.I, d.G, dgates.data(), d.G, p.w_ih, d.I, T(0),
                        g.dx, d.I);
  cpu::parallel_gemm<T>(p.threads, true, false, d.G, d.P, rows, dgates.data(), d.G, saved.h_prev, d.P,
                        T(0), g.dw_hh, d.P);
  cpu::column_sums(rows, d.G, dgates.data(), g.db_ih);
  cpu::column_sums(rows, d.G, dgates.data(), g.db_hh);
  if (proj)
    cpu::parallel_gemm<T>(p.threads, true, false, d.P, d.H, rows, dh_out.data(), d.P, h_tilde.data(), d.H,
                          T(0), g.dw_hr, d.H);
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
