// The GRU's per-step pointwise kernels, both variants, one thread per (batch row b, unit j),
// on the gate math of fusedrnn/gate_math.hpp (shared with the CPU). Gate blocks r, z, n at
// row[k * H + j]. Biases: b_ih and b_hh as given (either may be null); linear_before_reset
// keeps b_hn inside r * (W_hn h + b_hn), the original GRU adds it to the x side.
// Padding rows (past a sequence's length) keep h, get y = 0 and zeros in saved rows and in
// the gate gradients. The state h [B, H] is updated in place: the step's GEMMs have read it.
#pragma once

#include <cstdint>

#include "fusedrnn/gate_math.hpp"
#include "half_types.cuh"
#include "launch.cuh"
#include "step_order.cuh"

namespace fusedrnn::cuda {

using GruAct = math::StdActivations;

// A padding row of a forward step, unit j: y is 0, and so are the saved gate blocks
// (gates_saved of them) and h_prev, which backward never reads but multiplies by 0.
template <typename T, bool kSave>
__device__ void gru_padding(int64_t row, int64_t j, int64_t H, int gates_saved, T* y, T* gates,
                            T* h_prev) {
  y[row * H + j] = from_float<T>(0.0f);
  if (!kSave) return;
  for (int k = 0; k < gates_saved; ++k)
    gates[(row * gates_saved + k) * H + j] = from_float<T>(0.0f);
  h_prev[row * H + j] = from_float<T>(0.0f);
}

// linear_before_reset forward step s. xproj [T, B, 3H] = x @ w_ih^T, hproj [B, 3H] = h @ w_hh^T.
// kSave: gates [T, B, 4H] gets r, z, n, W_hn h + b_hn; h_prev [T, B, H] the entering state.
template <typename T, bool kSave>
__global__ void gru_lbr_forward_step(StepOrder order, int64_t s, int64_t B, int64_t H,
                                     const T* __restrict__ xproj, const T* __restrict__ hproj,
                                     const T* __restrict__ b_ih, const T* __restrict__ b_hh,
                                     T* __restrict__ h, T* __restrict__ y, T* __restrict__ gates,
                                     T* __restrict__ h_prev) {
  const int64_t G = 3 * H, S = 4 * H;
  FUSEDRNN_GRID_LOOP(i, B * H) {
    const int64_t b = i / H, j = i - b * H;
    const int64_t row = order.time(s, b) * B + b;
    if (!order.valid(s, b)) {
      gru_padding<T, kSave>(row, j, H, 4, y, gates, h_prev);
      continue;
    }
    const T* xr = xproj + row * G;
    const T* hr = hproj + b * G;
    const float a_r = to_float(xr[j]) + to_float(hr[j]) + load_or_zero(b_ih, j) + load_or_zero(b_hh, j);
    const float a_z = to_float(xr[H + j]) + to_float(hr[H + j]) + load_or_zero(b_ih, H + j) +
                      load_or_zero(b_hh, H + j);
    const float x_n = to_float(xr[2 * H + j]) + load_or_zero(b_ih, 2 * H + j);
    const float hn_lin = to_float(hr[2 * H + j]) + load_or_zero(b_hh, 2 * H + j);
    const auto p = math::gru_forward_point_lbr<GruAct>(a_r, a_z, x_n, hn_lin, to_float(h[i]));
    if (kSave) {
      gates[row * S + j] = from_float<T>(p.r);
      gates[row * S + H + j] = from_float<T>(p.z);
      gates[row * S + 2 * H + j] = from_float<T>(p.n);
      gates[row * S + 3 * H + j] = from_float<T>(hn_lin);
      h_prev[row * H + j] = h[i];
    }
    h[i] = from_float<T>(p.h);
    y[row * H + j] = h[i];
  }
}

// Original GRU, first half of step s: rz [B, 2H] holds W_hr h, W_hz h and becomes r, z;
// rh [B, H] = r * h, the input of the second GEMM (0 on padding rows).
template <typename T>
__global__ void gru_reset_step(StepOrder order, int64_t s, int64_t B, int64_t H,
                               const T* __restrict__ xproj, const T* __restrict__ b_ih,
                               const T* __restrict__ b_hh, T* __restrict__ rz,
                               const T* __restrict__ h, T* __restrict__ rh) {
  const int64_t G = 3 * H;
  FUSEDRNN_GRID_LOOP(i, B * H) {
    const int64_t b = i / H, j = i - b * H;
    if (!order.valid(s, b)) {
      rh[i] = from_float<T>(0.0f);
      continue;
    }
    const T* xr = xproj + (order.time(s, b) * B + b) * G;
    T* rzb = rz + b * 2 * H;
    const float r = GruAct::sigmoid(to_float(xr[j]) + to_float(rzb[j]) + load_or_zero(b_ih, j) +
                                    load_or_zero(b_hh, j));
    const float z = GruAct::sigmoid(to_float(xr[H + j]) + to_float(rzb[H + j]) +
                                    load_or_zero(b_ih, H + j) + load_or_zero(b_hh, H + j));
    rzb[j] = from_float<T>(r);
    rzb[H + j] = from_float<T>(z);
    rh[i] = from_float<T>(r * to_float(h[i]));
  }
}

// Original GRU, second half: hn [B, H] = W_hn (r * h); n = tanh(x_n + b_in + hn + b_hn), then
// the blend into h and y. kSave: gates [T, B, 3H] gets r, z, n; h_prev the entering state.
template <typename T, bool kSave>
__global__ void gru_new_step(StepOrder order, int64_t s, int64_t B, int64_t H,
                             const T* __restrict__ xproj, const T* __restrict__ b_ih,
                             const T* __restrict__ b_hh, const T* __restrict__ rz,
                             const T* __restrict__ hn, T* __restrict__ h, T* __restrict__ y,
                             T* __restrict__ gates, T* __restrict__ h_prev) {
  const int64_t G = 3 * H;
  FUSEDRNN_GRID_LOOP(i, B * H) {
    const int64_t b = i / H, j = i - b * H;
    const int64_t row = order.time(s, b) * B + b;
    if (!order.valid(s, b)) {
      gru_padding<T, kSave>(row, j, H, 3, y, gates, h_prev);
      continue;
    }
    const float r = to_float(rz[b * 2 * H + j]), z = to_float(rz[b * 2 * H + H + j]);
    const float n = GruAct::tanh(to_float(xproj[row * G + 2 * H + j]) +
                                 load_or_zero(b_ih, 2 * H + j) + to_float(hn[i]) +
                                 load_or_zero(b_hh, 2 * H + j));
    if (kSave) {
      gates[row * G + j] = from_float<T>(r);
      gates[row * G + H + j] = from_float<T>(z);
      gates[row * G + 2 * H + j] = from_float<T>(n);
      h_prev[row * H + j] = h[i];
    }
    h[i] = from_float<T>(math::gru_blend(z, n, to_float(h[i])));
    y[row * H + j] = h[i];
  }
}

// linear_before_reset backward step s: dh [B, H] (in: the gradient from later steps; dy is
// added) becomes the direct part of dh_prev, z * dh, ready for the GEMM dh += dgh @ w_hh.
// dgh [B, 3H]: this step's h-side pre-activation gradients (for the GEMM); dgh_all
// [T, B, 3H] or null: also scattered there; dgx_all [T, B, 3H]: the x-side ones, which differ
// in the n block only (dgh_n = r * dgx_n).
template <typename T>
__global__ void gru_lbr_backward_step(StepOrder order, int64_t s, int64_t B, int64_t H,
                                      const T* __restrict__ gates, const T* __restrict__ h_prev,
                                      const T* __restrict__ dy, T* __restrict__ dh,
                                      T* __restrict__ dgh, T* __restrict__ dgh_all,
                                      T* __restrict__ dgx_all) {
  const int64_t G = 3 * H, S = 4 * H;
  FUSEDRNN_GRID_LOOP(i, B * H) {
    const int64_t b = i / H, j = i - b * H;
    if (!order.valid(s, b)) {  // the gradient passes through; dgx_all's row stays 0
      for (int k = 0; k < 3; ++k) dgh[b * G + k * H + j] = from_float<T>(0.0f);
      continue;
    }
    const int64_t row = order.time(s, b) * B + b;
    const T* g = gates + row * S;
    const float r = to_float(g[j]), z = to_float(g[H + j]), n = to_float(g[2 * H + j]);
    const float hn_lin = to_float(g[3 * H + j]);
    const float dh_total = to_float(dh[i]) + to_float(dy[row * H + j]);
    const auto bg = math::gru_blend_backward(z, n, to_float(h_prev[row * H + j]), dh_total);
    const float da_r = math::sigmoid_grad(r, bg.da_n * hn_lin);
    const float h_side[3] = {da_r, bg.da_z, bg.da_n * r};
    const float x_side[3] = {da_r, bg.da_z, bg.da_n};
    for (int k = 0; k < 3; ++k) {
      dgh[b * G + k * H + j] = from_float<T>(h_side[k]);
      if (dgh_all) dgh_all[row * G + k * H + j] = from_float<T>(h_side[k]);
      dgx_all[row * G + k * H + j] = from_float<T>(x_side[k]);
    }
    dh[i] = from_float<T>(bg.dh_prev);
  }
}

// Original GRU backward, first half of step s: dy is added to dh; dg [B, 3H] gets the z and n
// blocks (the r block needs W_hn's part of the gradient: the next kernel), dh the direct path.
template <typename T>
__global__ void gru_blend_backward_step(StepOrder order, int64_t s, int64_t B, int64_t H,
                                        const T* __restrict__ gates,
                                        const T* __restrict__ h_prev, const T* __restrict__ dy,
                                        T* __restrict__ dh, T* __restrict__ dg) {
  const int64_t G = 3 * H;
  FUSEDRNN_GRID_LOOP(i, B * H) {
    const int64_t b = i / H, j = i - b * H;
    if (!order.valid(s, b)) {
      for (int k = 0; k < 3; ++k) dg[b * G + k * H + j] = from_float<T>(0.0f);
      continue;
    }
    const int64_t row = order.time(s, b) * B + b;
    const T* g = gates + row * G;
    const float dh_total = to_float(dh[i]) + to_float(dy[row * H + j]);
    const auto bg = math::gru_blend_backward(to_float(g[H + j]), to_float(g[2 * H + j]),
                                             to_float(h_prev[row * H + j]), dh_total);
    dg[b * G + H + j] = from_float<T>(bg.da_z);
    dg[b * G + 2 * H + j] = from_float<T>(bg.da_n);
    dh[i] = from_float<T>(bg.dh_prev);
  }
}

// Original GRU backward, second half: drh [B, H] = dg_n @ W_hn is the gradient of r * h; the r
// block of dg and dh += drh * r. dg_all [T, B, 3H] or null: the whole row scattered there.
template <typename T>
__global__ void gru_reset_backward_step(StepOrder order, int64_t s, int64_t B, int64_t H,
                                        const T* __restrict__ gates,
                                        const T* __restrict__ h_prev,
                                        const T* __restrict__ drh, T* __restrict__ dg,
                                        T* __restrict__ dg_all, T* __restrict__ dh) {
  const int64_t G = 3 * H;
  FUSEDRNN_GRID_LOOP(i, B * H) {
    const int64_t b = i / H, j = i - b * H;
    if (!order.valid(s, b)) continue;
    const int64_t row = order.time(s, b) * B + b;
    const float r = to_float(gates[row * G + j]);
    const float d = to_float(drh[i]);
    dg[b * G + j] = from_float<T>(math::sigmoid_grad(r, d * to_float(h_prev[row * H + j])));
    dh[i] = from_float<T>(to_float(dh[i]) + d * r);
    if (dg_all)
      for (int k = 0; k < 3; ++k) dg_all[row * G + k * H + j] = dg[b * G + k * H + j];
  }
}

// rh [rows, H] = r * h_prev over all saved rows (gates [rows, 3H]): the input whose product
// with the n-block gradients is dW_hn in the original GRU.
template <typename T>
__global__ void gru_reset_states(int64_t rows, int64_t H, const T* __restrict__ gates,
                                 const T* __restrict__ h_prev, T* __restrict__ rh) {
  FUSEDRNN_GRID_LOOP(i, rows * H) {
    const int64_t r = i / H, j = i - r * H;
    rh[i] = from_float<T>(to_float(gates[r * 3 * H + j]) * to_float(h_prev[i]));
  }
}

}  // namespace fusedrnn::cuda
