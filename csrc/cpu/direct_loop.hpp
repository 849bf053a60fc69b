// The time loops of one sequence (B = 1) over a few steps: on the calling thread, with the
// weights as the caller holds them, BLAS matrix-vector products. The team's loops pack the
// weights into panels first, a read and a write of each, which a long sequence repays step
// after step but a step or two (a cell, a decoder's step) do not: LSTM T = 1, B = 1, H = 256
// took 0.15-0.22 ms on the team, most of it packing; ONNX Runtime, which packs its weights once
// per session, took 0.06-0.08.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "blas.hpp"
#include "team_loop.hpp"

namespace fusedrnn::cpu {

// Where the direct loops beat the team's, forward inference, median ms team -> direct (2 threads,
// float32, I = H): LSTM T = 1: H = 128 0.041 -> 0.018, 256 0.219 -> 0.052, 512 0.517 -> 0.204,
// 1024 14.5 -> 1.75; T = 2: 0.067 -> 0.028, 0.185 -> 0.080, 0.481 -> 0.301, 13.9 -> 3.3; GRU
// T = 1: 0.063 -> 0.026, 0.109 -> 0.053, 0.371 -> 0.126, 3.08 -> 0.94; T = 2: 0.096 -> 0.038,
// 0.118 -> 0.089, 0.409 -> 0.261. From T = 3 on it was mixed (LSTM 1.3-2.9x, GRU 1.0-1.7x),
// from T = 4 even or behind (LSTM 0.84x at H = 256, 1.00x at 512), since the team's panels
// then pay and its two threads share the steps. With B > 1 a GEMM per step packs w_hh itself.
inline bool direct_loop_pays(int64_t steps, int64_t batch) { return batch == 1 && steps <= 2; }

// Forward of one sequence as team_forward (the same row and pad calls): per valid step
// xr = w_ih x_t + bias and hproj = w_hh h, then the step's row. x [steps, I]; bias [G] or null.
template <typename T, typename Row, typename Pad>
void direct_forward(const T* x, int64_t I, const T* w_ih, const T* bias, const T* w_hh,
                    const StepOrder& order, int64_t steps, int64_t H, int64_t G, T* y, T* state,
                    Row row, Pad pad) {
  std::vector<T> other(H), xr(G), hproj(G);
  T* h = state;
  T* h_next = other.data();
  for (int64_t s = 0; s < steps; ++s) {
    if (order.valid(s, 0)) {
      if (bias) std::copy(bias, bias + G, xr.begin());
      gemv<T>(false, G, I, w_ih, I, x + order.time(s, 0) * I, bias ? T(1) : T(0), xr.data());
      gemv<T>(false, G, H, w_hh, H, h, T(0), hproj.data());
    }
    forward_rows([&](int64_t, int64_t) { return xr.data(); }, order, s, 1, H, G, Range{0, H},
                 hproj.data(), h, h_next, y, row, pad);
    std::swap(h, h_next);
  }
  settle_columns(h, state, 1, H, 0, H);
}

// Backward of one sequence as team_backward (the same row calls): per step, last to first,
// dh += w_hh^T dg of the step after, then the step's row.
template <typename T, typename Row>
void direct_backward(const T* w_hh, const StepOrder& order, int64_t steps, int64_t H, int gates,
                     const T* dy, T* dgh, T* dh, Row row) {
  const int64_t G = gates * H;
  const StepGateGradients<T> dg_of(order, 1, G, dgh);
  std::vector<T> other(H);
  T* dh_cur = dh;
  T* dh_next = other.data();
  for (int64_t s = steps - 1; s >= 0; --s) {
    if (s + 1 < steps) gemv<T>(true, G, H, w_hh, H, dg_of(s + 1), T(1), dh_cur);
    backward_rows(order, s, 1, H, gates, Range{0, H}, dy, dg_of, dgh, dh_cur, dh_next, row);
    std::swap(dh_cur, dh_next);
  }
  if (steps > 0) gemv<T>(true, G, H, w_hh, H, dg_of(0), T(1), dh_cur);
  settle_columns(dh_cur, dh, 1, H, 0, H);
}

}  // namespace fusedrnn::cpu
