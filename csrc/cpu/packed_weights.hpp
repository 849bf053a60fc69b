// Weights packed once for many forward calls (pack_weights, fusedrnn.hpp): every panel of w_ih
// and w_hh (and w_hr) that a call would pack for its parts, ordered by group of `lanes` units,
// then gate, so that any part's panels (a range of whole groups: split_range) are one run.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "fusedrnn/fusedrnn.hpp"
#include "panels.hpp"
#include "thread_team.hpp"  // Range

namespace fusedrnn {

template <typename T>
struct PackedWeights {
  int gates = 0;
  int64_t hidden = 0, input = 0, proj = 0;  // H, I, and P (H without projection)
  const T* w_ih = nullptr;  // the weights packed: a call must pass these (argument_checks.cpp)
  const T* w_hh = nullptr;
  const T* w_hr = nullptr;  // or null, without projection
  cpu::PanelSet<T> ih, hh;  // panel j * gates + g: units [j * lanes, (j + 1) * lanes) of gate g
  cpu::PanelSet<T> hr;      // with projection, panel j: outputs [j * lanes, (j + 1) * lanes)

  PackedWeights(const T* w_ih_, const T* w_hh_, const T* w_hr_, int gates_, int64_t hidden_,
                int64_t input_, int64_t proj_, int lanes)
      : gates(gates_), hidden(hidden_), input(input_), proj(proj_), w_ih(w_ih_), w_hh(w_hh_),
        w_hr(w_hr_), ih(input_, lanes), hh(proj_, lanes), hr(hidden_, lanes) {
    pack(ih, w_ih, input, gates, hidden);
    pack(hh, w_hh, proj, gates, hidden);
    if (w_hr) pack(hr, w_hr, hidden, 1, proj);
  }

  // The first panel and the number of panels of units u (whole groups, the last may be short).
  std::pair<int64_t, int64_t> panels_of(const cpu::Range& u) const {
    const int lanes = hh.lanes;
    return {u.begin / lanes * gates, (u.size() + lanes - 1) / lanes * gates};
  }

 private:
  // Rows [g * n + c, g * n + c + lanes) of w (row stride ld) for each group c of the n columns,
  // then each of the `count` gates.
  static void pack(cpu::PanelSet<T>& set, const T* w, int64_t ld, int count, int64_t n) {
    set.reserve_gate_columns(count, 0, n);
    for (int64_t c = 0; c < n; c += set.lanes)
      for (int g = 0; g < count; ++g)
        set.add_columns(w, ld, 1, g * n + c, g * n + c + std::min<int64_t>(set.lanes, n - c));
  }
};

}  // namespace fusedrnn
