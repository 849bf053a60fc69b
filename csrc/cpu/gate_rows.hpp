// The gate row loops of the step kernels (included by step_kernels.cpp only, once per SIMD
// level): plain loops over the shared gate math, which the compiler vectorises (the float
// activations are branch-free arithmetic). No standard-library templates here: an
// out-of-line copy of one could be shared with a build for another instruction set.
#pragma once

#include <cstdint>

#include "activations.hpp"
#include "fusedrnn/gate_math.hpp"

namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA) {
namespace {

using Act = FastActivations;


template <typename T, bool kSave>
FUSEDRNN_HD void lstm_forward_loop(const T* __restrict xr, const T* __restrict hr,
                                   T* __restrict c, T* __restrict h, T* __restrict gates,
                                   T* __restrict c_prev, int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const auto p = math::lstm_forward_point<Act>(xr[j] + hr[j], xr[H + j] + hr[H + j],
                                                 xr[2 * H + j] + hr[2 * H + j],
                                                 xr[3 * H + j] + hr[3 * H + j], c[j]);
    if (kSave) {
      gates[j] = p.i;
      gates[H + j] = p.f;
      gates[2 * H + j] = p.g;
      gates[3 * H + j] = p.o;
      c_prev[j] = c[j];
    }
    c[j] = p.c;
    h[j] = p.h;
  }
}

template <typename T>
void lstm_forward(const T* xr, const T* hr, T* c, T* h, T* gates, T* c_prev, int64_t H, int64_t n) {
  if (gates) lstm_forward_loop<T, true>(xr, hr, c, h, gates, c_prev, H, n);
  else lstm_forward_loop<T, false>(xr, hr, c, h, gates, c_prev, H, n);
}

template <typename T, bool kTilde>
FUSEDRNN_HD void lstm_backward_loop(const T* __restrict gates, const T* __restrict c_prev,
                                    const T* __restrict dh, T* __restrict dc, T* __restrict dg,
                                    T* __restrict h_tilde, int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const auto r = math::lstm_backward_point<Act>(gates[j], gates[H + j], gates[2 * H + j],
                                                  gates[3 * H + j], c_prev[j], dh[j], dc[j]);
    dg[j] = r.da_i;
    dg[H + j] = r.da_f;
    dg[2 * H + j] = r.da_g;
    dg[3 * H + j] = r.da_o;
    dc[j] = r.dc_prev;
    if (kTilde) h_tilde[j] = r.h;
  }
}

template <typename T>
void lstm_backward(const T* gates, const T* c_prev, const T* dh, T* dc, T* dg, T* h_tilde,
                   int64_t H, int64_t n) {
  if (h_tilde) lstm_backward_loop<T, true>(gates, c_prev, dh, dc, dg, h_tilde, H, n);
  else lstm_backward_loop<T, false>(gates, c_prev, dh, dc, dg, h_tilde, H, n);
}

template <typename T, bool kSave>
FUSEDRNN_HD void gru_forward_lbr_loop(const T* __restrict xr, const T* __restrict hr,
                                      const T* __restrict b_hn, const T* __restrict h_prev,
                                      T* __restrict h, T* __restrict y, T* __restrict gates,
                                      int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const T hn_lin = hr[2 * H + j] + b_hn[j];
    const auto p = math::gru_forward_point_lbr<Act>(xr[j] + hr[j], xr[H + j] + hr[H + j],
                                                    xr[2 * H + j], hn_lin, h_prev[j]);
    if (kSave) {
      gates[j] = p.r;
      gates[H + j] = p.z;
      gates[2 * H + j] = p.n;
      gates[3 * H + j] = hn_lin;
    }
    h[j] = p.h;
    y[j] = p.h;
  }
}

template <typename T>
void gru_forward_lbr(const T* xr, const T* hr, const T* b_hn, const T* h_prev, T* h, T* y,
                     T* gates, int64_t H, int64_t n) {
  if (gates) gru_forward_lbr_loop<T, true>(xr, hr, b_hn, h_prev, h, y, gates, H, n);
  else gru_forward_lbr_loop<T, false>(xr, hr, b_hn, h_prev, h, y, gates, H, n);
}

template <typename T>
void gru_forward_reset(const T* __restrict xr, T* __restrict rz, const T* __restrict h,
                       T* __restrict rh, int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    rz[j] = Act::sigmoid(xr[j] + rz[j]);
    rz[H + j] = Act::sigmoid(xr[H + j] + rz[H + j]);
  }
  for (int64_t j = 0; j < n; ++j) rh[j] = rz[j] * h[j];
}

template <typename T, bool kSave>
FUSEDRNN_HD void gru_forward_new_loop(const T* __restrict xr, const T* __restrict rz,
                                      const T* __restrict hn, T* __restrict h, T* __restrict y,
                                      T* __restrict gates, int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const T n = Act::tanh(xr[2 * H + j] + hn[j]);
    if (kSave) {
      gates[j] = rz[j];
      gates[H + j] = rz[H + j];
      gates[2 * H + j] = n;
    }
    h[j] = math::gru_blend(rz[H + j], n, h[j]);
    y[j] = h[j];
  }
}

template <typename T>
void gru_forward_new(const T* xr, const T* rz, const T* hn, T* h, T* y, T* gates, int64_t H, int64_t n) {
  if (gates) gru_forward_new_loop<T, true>(xr, rz, hn, h, y, gates, H, n);
  else gru_forward_new_loop<T, false>(xr, rz, hn, h, y, gates, H, n);
}

template <typename T>
void gru_backward_lbr(const T* __restrict gates, const T* __restrict h_prev,
                      const T* __restrict dh, T* __restrict dgh, T* __restrict dgx,
                      T* __restrict dh_prev, int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const T r = gates[j], z = gates[H + j], n = gates[2 * H + j], hn_lin = gates[3 * H + j];
    const auto b = math::gru_blend_backward(z, n, h_prev[j], dh[j]);
    const T da_r = math::sigmoid_grad(r, b.da_n * hn_lin);
    dgh[j] = da_r;
    dgh[H + j] = b.da_z;
    dgh[2 * H + j] = b.da_n * r;
    dgx[j] = da_r;
    dgx[H + j] = b.da_z;
    dgx[2 * H + j] = b.da_n;
    dh_prev[j] = b.dh_prev;
  }
}

template <typename T>
void gru_backward_blend(const T* __restrict gates, const T* __restrict h_prev,
                        const T* __restrict dh, T* __restrict dg, T* __restrict dh_prev,
                        int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const auto b = math::gru_blend_backward(gates[H + j], gates[2 * H + j], h_prev[j], dh[j]);
    dg[H + j] = b.da_z;
    dg[2 * H + j] = b.da_n;
    dh_prev[j] = b.dh_prev;
  }
}

template <typename T>
void gru_backward_reset(const T* __restrict gates, const T* __restrict h_prev,
                        const T* __restrict drh, T* __restrict dg, T* __restrict dh_prev,
                        int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    dg[j] = math::sigmoid_grad(gates[j], drh[j] * h_prev[j]);
    dh_prev[j] += drh[j] * gates[j];
  }
}

}  // namespace
}  // namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA)
