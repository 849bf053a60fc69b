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
  bool linear_before_reset = true;          // false: the original GRU's split of w_hh
  const T* w_ih = nullptr;  // the weights packed: a call must pass these (argument_checks.cpp)
  const T* w_hh = nullptr;
  const T* w_hr = nullptr;  // or null, without projection
  // Panel j * gates + g: units [j * lanes, (j + 1) * lanes) of gate g. The original GRU's hh
  // holds its r and z gates only (hh_gates() = 2) and hn its n gate, which its loop multiplies
  // by r * h in a GEMM of its own.
  cpu::PanelSet<T> ih, hh, hn;
  cpu::PanelSet<T> hr;  // with projection, panel j: outputs [j * lanes, (j + 1) * lanes)

  PackedWeights(const T* w_ih_, const T* w_hh_, const T* w_hr_, int gates_, int64_t hidden_,
                int64_t input_, int64_t proj_, bool linear_before_reset_, int lanes)
      : gates(gates_), hidden(hidden_), input(input_), proj(proj_),
        linear_before_reset(linear_before_reset_), w_ih(w_ih_), w_hh(w_hh_), w_hr(w_hr_),
        ih(input_, lanes), hh(proj_, lanes), hn(hidden_, lanes), hr(hidden_, lanes) {
    pack(ih, w_ih, input, gates, hidden);
    pack(hh, w_hh, proj, hh_gates(), hidden);
    if (!linear_before_reset) pack(hn, w_hh, hidden, 1, hidden, 2);
    if (w_hr) pack(hr, w_hr, hidden, 1, proj);
  }

  int hh_gates() const { return linear_before_reset ? gates : 2; }

  // The first panel and the number of panels of units u (whole groups, the last may be short)
  // in a set of `count` gates a group.
  std::pair<int64_t, int64_t> panels_of(const cpu::Range& u, int count) const {
    const int lanes = hh.lanes;
    return {u.begin / lanes * count, (u.size() + lanes - 1) / lanes * count};
  }

 private:
  // Rows [g * n + c, g * n + c + lanes) of w (row stride ld) for each group c of the n columns,
  // then each gate g of [first, first + count).
  static void pack(cpu::PanelSet<T>& set, const T* w, int64_t ld, int count, int64_t n,
                   int first = 0) {
    set.reserve_gate_columns(count, 0, n);
    for (int64_t c = 0; c < n; c += set.lanes)
      for (int g = first; g < first + count; ++g)
        set.add_columns(w, ld, 1, g * n + c, g * n + c + std::min<int64_t>(set.lanes, n - c));
  }
};

}  // namespace fusedrnn
