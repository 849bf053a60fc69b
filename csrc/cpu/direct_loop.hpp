// The time loops for one row (the forward) or up to three (the backward: a step of up to three
// sequences, a few steps of one): on the calling thread, with the weights as the caller holds
// them, BLAS matrix-vector products a row. The team's loops packed the weights into panels
// first, a read and a write of each, which many rows repay but a cell's or a decoder's step
// does not: LSTM T = 1, B = 1, H = 256 took 0.15-0.22 ms on the team, most of it packing; ONNX
// Runtime, which packs its weights once per session, took 0.06-0.08.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "blas.hpp"
#include "team_loop.hpp"

namespace fusedrnn::cpu {

// Where the direct loops beat the team's, median ms team -> direct (2 threads, float32, I = H).
// Forward inference, against the team's loop on packed panels: LSTM T = 1, B = 1: H = 128
// 0.041 -> 0.018, 256 0.219 -> 0.052, 512 0.517 -> 0.204, 1024 14.5 -> 1.75; GRU 0.063 ->
// 0.026, 0.109 -> 0.053, 0.371 -> 0.126, 3.08 -> 0.94. But against its loop on the weights
// unpacked (up to 32 rows, time_loops.hpp), the direct forward wins at one row only, and not
// always: lstm_cell at B = 1, direct against team, warm median ms H = 64 0.021 / 0.022, 256
// 0.072 / 0.074, 512 0.231 / 0.176, 1024 1.71 / 1.18; cold (0.3 s apart) 256 0.464 / 0.415,
// 1024 2.21 / 2.58 (the team's worker comes late). From two rows on the team's wins, direct ->
// team: LSTM 1x2x256 0.114 -> 0.065, 1x3x256 0.153 -> 0.060, 3x1x256 0.116 -> 0.094, 1x3x512
// 0.636 -> 0.190, 1x2x1024 3.62 -> 0.89; GRU 1x3x256 0.096 -> 0.039 (each row of the direct
// loop reads the weights again, on one thread). The backward's team loop packed w_hh, so there
// the direct loop won up to three rows: LSTM training 1x1x1024 10.3 against 15.0 on the team;
// four or more were even or behind (T = 4, B = 1 0.84x at H = 256; T = 2, B = 2 0.78x).
inline bool direct_forward_pays(int64_t steps, int64_t batch) { return steps * batch <= 1; }
inline bool direct_backward_pays(int64_t steps, int64_t batch) { return steps * batch <= 3; }

// Forward as team_forward (the same row and pad calls), row by row: per valid step and batch
// row, xr = w_ih x_t + bias and hproj = w_hh h, then the row. x [steps, B, I]; bias [G] or null.
template <typename T, typename Row, typename Pad>
void direct_forward(const T* x, int64_t I, const T* w_ih, const T* bias, const T* w_hh,
                    const StepOrder& order, int64_t steps, int64_t batch, int64_t H, int64_t G,
                    T* y, T* state, Row row, Pad pad) {
  std::vector<T> other(batch * H), xr(batch * G), hproj(batch * G);
  T* h = state;
  T* h_next = other.data();
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t b = 0; b < batch; ++b) {
      if (!order.valid(s, b)) continue;
      T* xb = xr.data() + b * G;
      if (bias) std::copy(bias, bias + G, xb);
      gemv<T>(false, G, I, w_ih, I, x + (order.time(s, b) * batch + b) * I, bias ? T(1) : T(0),
              xb);
      gemv<T>(false, G, H, w_hh, H, h + b * H, T(0), hproj.data() + b * G);
    }
    forward_rows([&](int64_t, int64_t b) { return xr.data() + b * G; }, order, s, batch,
                 Range{0, batch}, H, G, Range{0, H}, hproj.data(), h, h_next, y, row, pad);
    std::swap(h, h_next);
  }
  settle_columns(h, state, batch, H, 0, H);
}

// Backward as team_backward (the same row calls): per step, last to first, dh += w_hh^T dg of
// the step after, row by row, then the step's rows.
template <typename T, typename Row>
void direct_backward(const T* w_hh, const StepOrder& order, int64_t steps, int64_t batch,
                     int64_t H, int gates, const T* dy, T* dgh, T* dh, Row row) {
  const int64_t G = gates * H;
  const StepGateGradients<T> dg_of(order, batch, G, dgh);
  std::vector<T> other(batch * H);
  T* dh_cur = dh;
  T* dh_next = other.data();
  auto recurrent = [&](int64_t s) {  // step s's part of the gradient of the state before it
    for (int64_t b = 0; b < batch; ++b)  // (a padding row's dg is zero: nothing to add)
      if (order.valid(s, b)) gemv<T>(true, G, H, w_hh, H, dg_of(s) + b * G, T(1), dh_cur + b * H);
  };
  for (int64_t s = steps - 1; s >= 0; --s) {
    if (s + 1 < steps) recurrent(s + 1);
    backward_rows(order, s, batch, Range{0, batch}, H, gates, Range{0, H}, dy, dg_of, dgh,
                  dh_cur, dh_next, row);
    std::swap(dh_cur, dh_next);
  }
  if (steps > 0) recurrent(0);
  settle_columns(dh_cur, dh, batch, H, 0, H);
}

}  // namespace fusedrnn::cpu
