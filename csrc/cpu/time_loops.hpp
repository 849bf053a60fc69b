// Which time loop runs a cell's sequence (the LSTM without projection, the linear-before-reset
// GRU): the direct loops for up to three rows in all (direct_loop.hpp), else the team's loops
// over packed panels (team_loop.hpp). The cells supply the rows (see team_forward and
// team_backward); gates: the cell's gate blocks (4 or 3).
#pragma once

#include <cstdint>

#include "direct_loop.hpp"
#include "team_loop.hpp"

namespace fusedrnn::cpu {

// x [steps, batch, I]; bias [gates * H] or null, added to the input projection; state [B, H]
// holds h0 on entry and the final state on exit.
template <typename T, typename Row, typename Pad>
void forward_loop(const T* x, int64_t I, const T* w_ih, const T* bias, const T* w_hh, int gates,
                  const StepOrder& order, int64_t steps, int64_t batch, int64_t H, int threads,
                  T* y, T* state, Row row, Pad pad) {
  const int64_t G = gates * H;
  if (direct_loop_pays(steps, batch))
    return direct_forward(x, I, w_ih, bias, w_hh, order, steps, batch, H, G, y, state, row, pad);
  const auto& kernels = step_kernels<T>();
  StepProjection<T> xproj(order, steps, batch, G, I, H, x, w_ih, bias, threads);
  const auto plan = TeamPlan<T>(w_hh, gates, H, H, batch, kernels.panel_lanes, Panels::forward,
                                threads, TeamPlan<T>::kWorkPerThread, /*claimed=*/true)
                        .with_input(xproj.loop_weights(), gates, H, I, kernels.panel_lanes);
  team_forward(plan, xproj, order, steps, batch, H, G, y, state, row, pad);
}

// dgh: the h-side gate gradients, time-major [steps, batch, gates * H]; dh [B, H] holds dhn on
// entry and dh0 on exit.
template <typename T, typename Row>
void backward_loop(const T* w_hh, int gates, const StepOrder& order, int64_t steps,
                   int64_t batch, int64_t H, int threads, const T* dy, T* dgh, T* dh, Row row) {
  if (direct_loop_pays(steps, batch))
    return direct_backward(w_hh, order, steps, batch, H, gates, dy, dgh, dh, row);
  const TeamPlan<T> plan(w_hh, gates, H, H, batch, step_kernels<T>().panel_lanes,
                         Panels::backward, threads, TeamPlan<T>::kWorkPerThread,
                         /*claimed=*/true);
  team_backward(plan, order, steps, batch, H, gates, dy, dgh, dh, row);
}

}  // namespace fusedrnn::cpu
