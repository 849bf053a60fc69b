// Recurrent weights packed into the panel layout of the step kernels' GEMM: for each group of
// `lanes` output columns, k rows of `lanes` values, contiguous. Packed once per call and per
// part, for the columns that part computes, or once for many calls (PackedWeights).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "fusedrnn/fusedrnn.hpp"  // allocate_buffer, free_buffer

namespace fusedrnn::cpu {

// An allocator whose resize(n) leaves new elements uninitialised: packing writes every
// element anyway, and zero-filling first cost a quarter of the packing time. Blocks from 1 MiB
// on come from the buffer cache, so that the next call's panels reuse the pages: from malloc,
// a call that packed 1 MiB or more a part faulted them in afresh each time (LSTM inference,
// 2 threads, faults and ms a call: float32 100x1x1024 4,085 and 33.7-39.9 -> 0-1 and
// 29.9-33.4; float64 100x1x256 992 and 7.9 -> 0 and 4.9). Smaller blocks stay with the heap,
// which mostly keeps their pages (but not always: float64 2x64x256, sixteen parts of 128 KiB,
// still faulted 1,056 pages a call).
template <typename T>
struct UninitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <typename U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    if (cached(n)) return static_cast<T*>(allocate_buffer(n * sizeof(T)));
    return std::allocator<T>::allocate(n);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (cached(n)) return free_buffer(p);
    std::allocator<T>::deallocate(p, n);
  }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }

 private:
  static bool cached(size_t n) { return n * sizeof(T) >= (size_t(1) << 20); }
};
// A construct() out of reach (private) would not fail: std::vector would value-initialise
// instead, and zero every packed element again (1 MiB of panels 38.8 -> 51.5 us).
static_assert(std::is_void_v<decltype(std::declval<UninitAllocator<float>&>().construct(
                  std::declval<float*>()))>);

template <typename T>
struct PanelSet {
  int64_t k = 0;             // reduction length
  int lanes = 0;             // columns per panel
  std::vector<T, UninitAllocator<T>> data;  // [panels][k][lanes]
  std::vector<int64_t> col;  // first output column of each panel
  std::vector<int> width;    // valid columns of each panel (the last of a range may be short)
  const T* unpacked = nullptr;  // or the weights, unpacked (refer_gate_columns, refer_columns)
  int64_t unpacked_ld = 0;      // their row stride
  bool unpacked_runs = false;   // refer_columns: a panel's columns are runs of a weight row
  const T* elsewhere = nullptr;  // or panels packed once for many calls (refer_panels)

  PanelSet(int64_t k_, int lanes_) : k(k_), lanes(lanes_) {}
  int64_t count() const { return static_cast<int64_t>(col.size()); }
  const T* panels() const { return elsewhere ? elsewhere : data.data(); }

  // Panels [first, first + n) of `all` (run: first, n), read where they are: a part's share of
  // the panels packed once for many calls (PackedWeights::panels_of).
  void refer_panels(const PanelSet& all, std::pair<int64_t, int64_t> run) {
    const auto [first, n] = run;
    elsewhere = all.panels() + first * k * lanes;
    col.assign(all.col.begin() + first, all.col.begin() + first + n);
    width.assign(all.width.begin() + first, all.width.begin() + first + n);
  }

  // Appends panels for output columns [c0, c1) of weights w, whose value for output column n
  // and reduction index i is w[n * n_stride + i * k_stride]. Missing lanes are zero.
  void add_columns(const T* w, int64_t n_stride, int64_t k_stride, int64_t c0, int64_t c1) {
    reserve_gate_columns(1, c0, c1);
    for (int64_t c = c0; c < c1; c += lanes) {
      const int cols = static_cast<int>(std::min<int64_t>(lanes, c1 - c));
      const size_t base = data.size();
      data.resize(base + k * lanes);
      pack_panel(w + c * n_stride, n_stride, k_stride, cols, data.data() + base);
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

  // The panels of add_gate_columns(w, ld, 1, ...) left unpacked: the same groups of columns,
  // read from the weights in rows w[n * ld + i] where they are (StepKernels::row_gemm).
  void refer_gate_columns(const T* w, int64_t ld, int gates, int64_t stride, int64_t c0,
                          int64_t c1) {
    unpacked = w, unpacked_ld = ld;
    for (int g = 0; g < gates; ++g)
      for (int64_t c = g * stride + c0; c < g * stride + c1; c += lanes) {
        col.push_back(c);
        width.push_back(static_cast<int>(std::min<int64_t>(lanes, g * stride + c1 - c)));
      }
  }

  // The panels of add_columns(w, 1, ld, c0, c1) left unpacked: the same groups of columns,
  // each row of a panel the run w[i * ld + c, i * ld + c + width) (StepKernels::column_gemm).
  void refer_columns(const T* w, int64_t ld, int64_t c0, int64_t c1) {
    refer_gate_columns(w, ld, 1, 0, c0, c1);
    unpacked_runs = true;
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

 private:
  // d[i * lanes + l] = w[l * n_stride + i * k_stride] for l < cols, i < k, and 0 for the
  // missing lanes cols <= l < lanes. Weights in rows (k_stride 1, the forward layouts) are
  // transposed in 4 x 4 blocks: 1 MiB took 0.15-0.23 ms, now 0.05, on the 2-core EPYC (most of
  // a call's fixed cost at batch 1).
  void pack_panel(const T* w, int64_t n_stride, int64_t k_stride, int cols, T* d) const {
    int64_t i = 0;
    if (k_stride == 1) {
      for (; i + 4 <= k; i += 4) {
        int l = 0;
        for (; l + 4 <= cols; l += 4)
          transpose4(w + l * n_stride + i, n_stride, d + i * lanes + l);
        for (; l < cols; ++l)
          for (int ii = 0; ii < 4; ++ii) d[(i + ii) * lanes + l] = w[l * n_stride + i + ii];
      }
    } else if (n_stride == 1) {
      for (; i < k; ++i) std::copy(w + i * k_stride, w + i * k_stride + cols, d + i * lanes);
    }
    for (; i < k; ++i)
      for (int l = 0; l < cols; ++l) d[i * lanes + l] = w[l * n_stride + i * k_stride];
    for (i = 0; cols < lanes && i < k; ++i)
      std::fill(d + i * lanes + cols, d + (i + 1) * lanes, T(0));
  }

  // d[ii * lanes + j] = w[j * ld + ii] for ii, j < 4: four loads, eight shuffles, four stores.
  void transpose4(const T* w, int64_t ld, T* d) const {
    typedef T V __attribute__((vector_size(4 * sizeof(T))));
    V r0, r1, r2, r3;
    std::memcpy(&r0, w, sizeof(V));
    std::memcpy(&r1, w + ld, sizeof(V));
    std::memcpy(&r2, w + 2 * ld, sizeof(V));
    std::memcpy(&r3, w + 3 * ld, sizeof(V));
    const V lo01 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);  // r0[0] r1[0] r0[1] r1[1]
    const V lo23 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
    const V hi01 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);  // r0[2] r1[2] r0[3] r1[3]
    const V hi23 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
    const V t0 = __builtin_shufflevector(lo01, lo23, 0, 1, 4, 5);
    const V t1 = __builtin_shufflevector(lo01, lo23, 2, 3, 6, 7);
    const V t2 = __builtin_shufflevector(hi01, hi23, 0, 1, 4, 5);
    const V t3 = __builtin_shufflevector(hi01, hi23, 2, 3, 6, 7);
    std::memcpy(d, &t0, sizeof(V));
    std::memcpy(d + lanes, &t1, sizeof(V));
    std::memcpy(d + 2 * lanes, &t2, sizeof(V));
    std::memcpy(d + 3 * lanes, &t3, sizeof(V));
  }
};

}  // namespace fusedrnn::cpu
