// Which time loop runs a cell's sequence (the LSTM without projection, the linear-before-reset
// GRU): the direct loops for one row forward and up to three backward (direct_loop.hpp), else
// the team's loops (team_loop.hpp), over packed panels, or for a few rows over the weights
// unpacked (unpacked_weights_pay, unpacked_backward_pays). The cells supply the rows (see
// team_forward and team_backward); gates: the cell's gate blocks (4 or 3).
#pragma once

#include <cstdint>

#include "direct_loop.hpp"
#include "team_loop.hpp"

namespace fusedrnn::cpu {

// Whether the team's forward reads the weights where they are (StepKernels::row_gemm) rather
// than packing them into panels: for up to 32 rows in all (T * B), and up to 64 once the
// weights (weight_bytes: all the forward multiplies by) reach 8 MiB. Packing costs a read and a
// write of the weights, about what a few rows' GEMM on them costs; the panels then run the
// GEMM faster (a contiguous stream, no dot-product sums to reduce), which repays it from about
// 64 rows on. Median ms, 2 threads, float32, I = H, packed -> unpacked: LSTM inference
// 1x4x256 0.167 -> 0.095, 1x16x256 0.272 -> 0.211, 2x16x256 0.438 -> 0.401, 4x1x256 0.159 ->
// 0.093, 16x1x256 0.335 -> 0.303, 1x16x512 1.19 -> 0.69, 2x16x512 1.41 -> 1.13, 1x8x1024 6.0 ->
// 4.2; GRU 1x4x256 0.184 -> 0.090, 1x32x256 0.328 -> 0.282, 4x8x512 1.30 -> 1.06. From 64 rows
// on, even or behind: LSTM 1x64x256 0.93x, 4x16x256 0.94x, 8x16x256 0.85x. But weights that
// do not stay in cache make packing cost twice as much (32 MiB: about 3.5 ms a call), and
// from 8 MiB 64 rows still gain, p10 ms: 1x64x512 2.0-2.2 -> 1.8-2.0, 1x64x768 5.2-5.3 ->
// 4.0-4.5, 1x64x1024 9.9-10.0 -> 7.8-8.3, 1x33x1024 8.8-9.8 -> 4.7-5.1, 2x32x512 2.3-2.5 ->
// 2.1 (at 2 MiB even: 1x64x256 0.60-0.66 -> 0.68-0.69, 4x16x256 0.56-0.64 -> 0.52-0.59).
// A rule of the sizes only, so that every thread count (and training) gets the same bits.
inline bool unpacked_weights_pay(int64_t steps, int64_t batch, int64_t weight_bytes) {
  const int64_t rows = steps * batch;
  return rows <= 32 || (rows <= 64 && weight_bytes >= (int64_t(8) << 20));
}

// The same for the backward's w_hh (StepKernels::column_gemm), whose runs of columns come from
// rows far apart: it pays for one or two steps of up to 32 rows only. Median ms, packed ->
// unpacked: LSTM 1x4x256 0.361 -> 0.300, 1x16x256 0.547 -> 0.485, 2x4x512 2.17 -> 1.70,
// 1x8x1024 10.9 -> 9.0; GRU 1x8x1024 7.6 -> 6.4; even at 2x16x256 and 1x32x256 (1.00-1.02x);
// behind at 4x1x256 (0.90x) and 4x4x1024 (0.86x).
inline bool unpacked_backward_pays(int64_t steps, int64_t batch) {
  return steps <= 2 && steps * batch <= 32;
}

// x [steps, batch, I]; bias [gates * H] or null, added to the input projection; state [B, H]
// holds h0 on entry and the final state on exit. packed: w_ih and w_hh packed once for many
// calls (PackedWeights), which the team's loop reads even for one row (LSTM inference 1x1xH,
// p10 ms, direct -> packed: H=256 0.051-0.073 -> 0.042-0.043, 512 0.19-0.25 -> 0.09-0.10,
// 1024 1.78-1.79 -> 0.48-0.59); or null: then one row runs the direct loop, a few rows read the
// weights unpacked, more pack them into panels for this call.
template <typename T, typename Row, typename Pad>
void forward_loop(const T* x, int64_t I, const T* w_ih, const T* bias, const T* w_hh, int gates,
                  const PackedWeights<T>* packed, const StepOrder& order, int64_t steps,
                  int64_t batch, int64_t H, int threads, T* y, T* state, Row row, Pad pad) {
  const int64_t G = gates * H;
  if (!packed && direct_forward_pays(steps, batch))
    return direct_forward(x, I, w_ih, bias, w_hh, order, steps, batch, H, G, y, state, row, pad);
  const auto& kernels = step_kernels<T>();
  const bool unpacked =
      !packed && unpacked_weights_pay(steps, batch, G * (I + H) * int64_t(sizeof(T)));
  StepProjection<T> xproj(order, steps, batch, G, I, H, x, w_ih, bias, threads);
  const auto plan = forward_plan(w_hh, gates, gates, H, H, batch, kernels.panel_lanes, threads,
                                 TeamPlan<T>::kWorkPerThread, /*claimed=*/true, packed,
                                 unpacked, xproj.loop_weights(), I, /*rows_gates=*/gates);
  team_forward(plan, xproj, order, steps, batch, H, G, y, state, row, pad);
}

// dgh: the h-side gate gradients, time-major [steps, batch, gates * H]; dh [B, H] holds dhn on
// entry and dh0 on exit.
template <typename T, typename Row>
void backward_loop(const T* w_hh, int gates, const StepOrder& order, int64_t steps,
                   int64_t batch, int64_t H, int threads, const T* dy, T* dgh, T* dh, Row row) {
  if (direct_backward_pays(steps, batch))
    return direct_backward(w_hh, order, steps, batch, H, gates, dy, dgh, dh, row);
  const bool unpacked = unpacked_backward_pays(steps, batch);
  const TeamPlan<T> plan(w_hh, gates, H, H, batch, step_kernels<T>().panel_lanes,
                         unpacked ? Panels::backward_unpacked : Panels::backward, threads,
                         TeamPlan<T>::kWorkPerThread, /*claimed=*/true,
                         /*row_bytes=*/gates * H * H * int64_t(sizeof(T)));
  team_backward(plan, order, steps, batch, H, gates, dy, dgh, dh, row);
}

}  // namespace fusedrnn::cpu
