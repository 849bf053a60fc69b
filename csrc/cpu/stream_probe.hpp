// The read-rate probe (included by step_kernels.cpp only, once per SIMD level): the batch-1
// recurrent product's memory traffic with nothing else, so that its rate is the ceiling of a
// step that must stream its weights from wherever they fit (L1, L2, L3 or memory).
#pragma once

#include <cstdint>
#include <cstring>

#include "panel_gemm.hpp"

namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA) {
namespace {

// Four panels side by side, as the packed GEMV streams them: two vectors of each a row, one
// multiply-add each into its own accumulator (eight chains, enough to cover the FMA latency).
constexpr int kStreamPanels = 4;

// Reads `n` values of `data` (n a multiple of kStreamPanels * the panel width) `passes` times;
// stores a checksum in *sink so that no load is optimised away. Returns the bytes read.
template <typename T>
int64_t stream_burst(const T* data, int64_t n, int64_t passes, T scale, T* sink) {
  using V = typename Vec<T>::type;
  constexpr int L = kPanelLanes<T>, VL = L / 2;
  const int64_t rows = n / (kStreamPanels * L);
  V s, acc0[kStreamPanels] = {}, acc1[kStreamPanels] = {};
  for (int l = 0; l < VL; ++l) s[l] = scale;
  for (int64_t p = 0; p < passes; ++p) {
    for (int64_t i = 0; i < rows; ++i) {
#pragma GCC unroll 4
      for (int q = 0; q < kStreamPanels; ++q) {
        V w0, w1;
        std::memcpy(&w0, data + (q * rows + i) * L, sizeof w0);
        std::memcpy(&w1, data + (q * rows + i) * L + VL, sizeof w1);
        acc0[q] += s * w0;
        acc1[q] += s * w1;
      }
    }
  }
  V sum = acc0[0] + acc1[0];
  for (int q = 1; q < kStreamPanels; ++q) sum += acc0[q] + acc1[q];
  T out = 0;
  for (int l = 0; l < VL; ++l) out += sum[l];
  *sink = out;
  return passes * rows * kStreamPanels * L * int64_t(sizeof(T));
}

}  // namespace
}  // namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA)
