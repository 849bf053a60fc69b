// Recurrent weights packed into the panel layout of the step kernels' GEMM: for each group of
// `lanes` output columns, k rows of `lanes` values, contiguous. Packed once per call and per
// thread, for the columns that thread computes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace fusedrnn::cpu {

template <typename T>
struct PanelSet {
  int64_t k = 0;             // reduction length
  int lanes = 0;             // columns per panel
  std::vector<T> data;       // [panels][k][lanes]
  std::vector<int64_t> col;  // first output column of each panel
  std::vector<int> width;    // valid columns of each panel (the last of a range may be short)

  PanelSet(int64_t k_, int lanes_) : k(k_), lanes(lanes_) {}
  int64_t count() const { return static_cast<int64_t>(col.size()); }

  // Appends panels for output columns [c0, c1) of weights w, whose value for output column n
  // and reduction index i is w[n * n_stride + i * k_stride]. Missing lanes are zero.
  void add_columns(const T* w, int64_t n_stride, int64_t k_stride, int64_t c0, int64_t c1) {
    reserve_gate_columns(1, c0, c1);
    for (int64_t c = c0; c < c1; c += lanes) {
      const int cols = static_cast<int>(std::min<int64_t>(lanes, c1 - c));
      const size_t base = data.size();
      data.resize(base + k * lanes, T(0));
      T* d = data.data() + base;
      for (int64_t i = 0; i < k; ++i)
        for (int l = 0; l < cols; ++l) d[i * lanes + l] = w[(c + l) * n_stride + i * k_stride];
      col.push_back(c);
      width.push_back(cols);
    }
  }

  // add_columns for columns [g * stride + c0, g * stride + c1) of each gate g < gates: the
  // rows of every gate of a thread's units.
  void add_gate_columns(const T* w, int64_t n_stride, int64_t k_stride, int gates,
                        int64_t stride, int64_t c0, int64_t c1) {
    reserve_gate_columns(gates, c0, c1);
    for (int g = 0; g < gates; ++g)
      add_columns(w, n_stride, k_stride, g * stride + c0, g * stride + c1);
  }

  // Allocates (without touching) room for `gates` more ranges [c0, c1): a caller may reserve
  // on one thread, where an allocation failure can throw, and fill on another. Sized once:
  // growing `data` panel by panel re-copied it and touched fresh pages at every doubling,
  // which made packing a 1 MiB w_hh take 1.4 ms instead of 0.2 ms.
  void reserve_gate_columns(int gates, int64_t c0, int64_t c1) {
    const int64_t panels = count() + gates * ((c1 - c0 + lanes - 1) / lanes);
    data.reserve(panels * k * lanes);
    col.reserve(panels);
    width.reserve(panels);
  }
};

}  // namespace fusedrnn::cpu
