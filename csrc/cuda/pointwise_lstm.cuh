// The LSTM's per-step pointwise kernels: everything after the recurrent GEMM, fused into one
// pass per step, one thread per (batch row b, unit j). The gate math is fusedrnn/gate_math.hpp,
// the very functions the CPU step kernels call; only loads and stores differ (storage T, math
// in float). Gate blocks are laid out as in the weights: row[k * H + j] is gate k of unit j.
//
// Rows past a sequence's length (padding) keep their state, get y = 0, and get zeros in the
// saved block and in the gate gradients (never used, but 0 * x must stay finite there).
#pragma once

#include <cstdint>

#include "fusedrnn/gate_math.hpp"
#include "half_types.cuh"
#include "launch.cuh"
#include "step_order.cuh"

namespace fusedrnn::cuda {

using Act = math::StdActivations;

// Forward step s. xproj: [T, B, 4H] = x @ w_ih^T (time-major); hproj: [B, 4H] = h @ w_hh^T.
// c: [B, H] cell state, updated in place. kProj false: h [B, H] is the state, updated in place
// (its GEMM has run), and y [T, B, H] gets it. kProj true: h is h_tilde [B, H] = o * tanh(c),
// the projection's input (0 on padding rows); y and the state are the projection kernel's.
// kSave: gates [T, B, 4H], c_prev [T, B, H] and (kProj false) h_prev [T, B, H] get filled.
template <typename T, bool kSave, bool kProj>
__global__ void lstm_forward_step(StepOrder order, int64_t s, int64_t B, int64_t H,
                                  const T* __restrict__ xproj, const T* __restrict__ hproj,
                                  const T* __restrict__ b_ih, const T* __restrict__ b_hh,
                                  T* __restrict__ c, T* __restrict__ h, T* __restrict__ y,
                                  T* __restrict__ gates, T* __restrict__ c_prev,
                                  T* __restrict__ h_prev) {
  const int64_t G = 4 * H;
  FUSEDRNN_GRID_LOOP(i, B * H) {
    const int64_t b = i / H, j = i - b * H;
    const int64_t row = order.time(s, b) * B + b;  // (t, b) in time-major arrays
    if (!order.valid(s, b)) {
      if (kProj) h[i] = from_float<T>(0.0f);
      else y[row * H + j] = from_float<T>(0.0f);
      if (kSave) {
        for (int k = 0; k < 4; ++k) gates[row * G + k * H + j] = from_float<T>(0.0f);
        c_prev[row * H + j] = from_float<T>(0.0f);
        if (!kProj) h_prev[row * H + j] = from_float<T>(0.0f);
      }
      continue;
    }
    float a[4];
    for (int k = 0; k < 4; ++k) {
      const int64_t u = k * H + j;
      a[k] = to_float(xproj[row * G + u]) + to_float(hproj[b * G + u]) + load_or_zero(b_ih, u) +
             load_or_zero(b_hh, u);
    }
    const auto p = math::lstm_forward_point<Act>(a[0], a[1], a[2], a[3], to_float(c[i]));
    if (kSave) {
      gates[row * G + j] = from_float<T>(p.i);
      gates[row * G + H + j] = from_float<T>(p.f);
      gates[row * G + 2 * H + j] = from_float<T>(p.g);
      gates[row * G + 3 * H + j] = from_float<T>(p.o);
      c_prev[row * H + j] = c[i];
      if (!kProj) h_prev[row * H + j] = h[i];
    }
    c[i] = from_float<T>(p.c);
    h[i] = from_float<T>(p.h);
    if (!kProj) y[row * H + j] = h[i];
  }
}

// Second half of a projected step, one thread per (b, k < P): hp [B, P] = h_tilde @ w_hr^T
// becomes the state h [B, P] and y [T, B, P]; padding rows keep h and get y = 0.
template <typename T, bool kSave>
__global__ void lstm_projection_step(StepOrder order, int64_t s, int64_t B, int64_t P,
                                     const T* __restrict__ hp, T* __restrict__ h,
                                     T* __restrict__ y, T* __restrict__ h_prev) {
  FUSEDRNN_GRID_LOOP(i, B * P) {
    const int64_t b = i / P, k = i - b * P;
    const int64_t at = (order.time(s, b) * B + b) * P + k;
    if (!order.valid(s, b)) {
      y[at] = from_float<T>(0.0f);
      if (kSave) h_prev[at] = from_float<T>(0.0f);
      continue;
    }
    if (kSave) h_prev[at] = h[i];
    h[i] = hp[i];
    y[at] = hp[i];
  }
}

// Backward step s. gates, c_prev: the saved block. kProj false: dh [B, H] holds the gradient
// of this step's output from later steps; dy [T, B, H] is added; dh is then zeroed, ready for
// the GEMM dh += dg @ w_hh (an LSTM's h reaches h_prev through w_hh only; padding rows pass dh
// through untouched). kProj true: dh is dh_tilde [B, H] = the gradient of o * tanh(c), read
// only, and h_tilde [B, H] (this step's slice) gets o * tanh(c) for dW_hr.
// dc [B, H]: in, the gradient of c from the next step; out, that of c_prev.
// dg [B, 4H]: this step's gate gradients for the GEMM; dg_all [T, B, 4H] or null: also
// scattered there (reverse with lengths, where a step's rows are not one block of dg_all).
template <typename T, bool kProj>
__global__ void lstm_backward_step(StepOrder order, int64_t s, int64_t B, int64_t H,
                                   const T* __restrict__ gates, const T* __restrict__ c_prev,
                                   const T* __restrict__ dy, T* __restrict__ dh,
                                   T* __restrict__ dc, T* __restrict__ dg,
                                   T* __restrict__ dg_all, T* __restrict__ h_tilde) {
  const int64_t G = 4 * H;
  FUSEDRNN_GRID_LOOP(i, B * H) {
    const int64_t b = i / H, j = i - b * H;
    if (!order.valid(s, b)) {
      for (int k = 0; k < 4; ++k) dg[b * G + k * H + j] = from_float<T>(0.0f);
      if (kProj) h_tilde[i] = from_float<T>(0.0f);
      continue;
    }
    const int64_t row = order.time(s, b) * B + b;
    const T* g = gates + row * G;
    const float dh_total = to_float(dh[i]) + (kProj ? 0.0f : to_float(dy[row * H + j]));
    const auto r = math::lstm_backward_point<Act>(
        to_float(g[j]), to_float(g[H + j]), to_float(g[2 * H + j]), to_float(g[3 * H + j]),
        to_float(c_prev[row * H + j]), dh_total, to_float(dc[i]));
    const float da[4] = {r.da_i, r.da_f, r.da_g, r.da_o};
    for (int k = 0; k < 4; ++k) {
      dg[b * G + k * H + j] = from_float<T>(da[k]);
      if (dg_all) dg_all[row * G + k * H + j] = from_float<T>(da[k]);
    }
    dc[i] = from_float<T>(r.dc_prev);
    if (kProj) h_tilde[i] = from_float<T>(r.h);
    else dh[i] = from_float<T>(0.0f);
  }
}

// First part of a projected backward step, one thread per (b, k < P): dh_out [B, P] (this
// step's slice, kept for dW_hr) = dh + dy for valid rows, and dh is zeroed for the GEMM
// dh += dg @ w_hh; padding rows get dh_out = 0 and pass dh through.
template <typename T>
__global__ void lstm_projection_backward_step(StepOrder order, int64_t s, int64_t B, int64_t P,
                                              const T* __restrict__ dy, T* __restrict__ dh,
                                              T* __restrict__ dh_out) {
  FUSEDRNN_GRID_LOOP(i, B * P) {
    const int64_t b = i / P, k = i - b * P;
    if (!order.valid(s, b)) {
      dh_out[i] = from_float<T>(0.0f);
      continue;
    }
    const int64_t at = (order.time(s, b) * B + b) * P + k;
    dh_out[i] = from_float<T>(to_float(dh[i]) + to_float(dy[at]));
    dh[i] = from_float<T>(0.0f);
  }
}

}  // namespace fusedrnn::cuda
