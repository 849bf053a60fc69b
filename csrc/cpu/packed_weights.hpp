// Weights packed once for many forward calls (pack_weights, fusedrnn.hpp): every panel of w_ih
// and w_hh that a call would pack for its parts, ordered by group of `lanes` units, then gate,
// so that any part's panels (a range of whole groups: split_range) are one run of them.
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
  int64_t hidden = 0, input = 0;
  const T* w_ih = nullptr;  // the weights packed: a call must pass these (argument_checks.cpp)
  const T* w_hh = nullptr;
  cpu::PanelSet<T> ih, hh;  // panel j * gates + g: units [j * lanes, (j + 1) * lanes) of gate g

  PackedWeights(const T* w_ih_, const T* w_hh_, int gates_, int64_t hidden_, int64_t input_,
                int lanes)
      : gates(gates_), hidden(hidden_), input(input_), w_ih(w_ih_), w_hh(w_hh_),
        ih(input_, lanes), hh(hidden_, lanes) {
    pack(ih, w_ih, input);
    pack(hh, w_hh, hidden);
  }

  // The first panel and the number of panels of units u (whole groups, the last may be short).
  std::pair<int64_t, int64_t> panels_of(const cpu::Range& u) const {
    const int lanes = hh.lanes;
    return {u.begin / lanes * gates, (u.size() + lanes - 1) / lanes * gates};
  }

 private:
  void pack(cpu::PanelSet<T>& set, const T* w, int64_t ld) {
    set.reserve_gate_columns(gates, 0, hidden);
    for (int64_t u = 0; u < hidden; u += set.lanes)
      for (int g = 0; g < gates; ++g) {
        const int64_t c = g * hidden + u;
        set.add_columns(w, ld, 1, c, c + std::min<int64_t>(set.lanes, hidden - u));
      }
  }
};

}  // namespace fusedrnn
