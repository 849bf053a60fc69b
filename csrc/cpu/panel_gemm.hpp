// The recurrent GEMM's micro-kernel (included by step_kernels.cpp only, once per SIMD level).
// A panel is `lanes` output columns (two SIMD vectors) by k; each block of up to 4 input rows
// keeps its 4 x 2 accumulators in registers while the panel streams past once.
#pragma once

#include <cstdint>
#include <cstring>

#include "fusedrnn/gate_math.hpp"

namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA) {
namespace {

// GCC/Clang vector extension at this build's native width: one register per vector.
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(FUSEDRNN_VECTOR_BYTES)));
};

template <typename T>
constexpr int kPanelLanes = 2 * FUSEDRNN_VECTOR_BYTES / sizeof(T);

template <typename T, int R>
FUSEDRNN_HD void panel_block(int64_t k, const T* __restrict a, int64_t lda,
                             const T* __restrict panel, const T* __restrict bias,
                             T* __restrict c, int64_t ldc, int width, bool accumulate) {
  using V = typename Vec<T>::type;
  constexpr int L = kPanelLanes<T>, VL = L / 2;
  V b0{}, b1{};
  if (bias) {
    T lanes[L] = {};
    for (int l = 0; l < width; ++l) lanes[l] = bias[l];
    std::memcpy(&b0, lanes, sizeof b0);
    std::memcpy(&b1, lanes + VL, sizeof b1);
  }
  V acc0[R], acc1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    acc0[r] = b0;
    acc1[r] = b1;
  }
  for (int64_t i = 0; i < k; ++i) {
    V w0, w1;
    std::memcpy(&w0, panel + i * L, sizeof w0);
    std::memcpy(&w1, panel + i * L + VL, sizeof w1);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const T av = a[r * lda + i];
      acc0[r] += av * w0;
      acc1[r] += av * w1;
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    T out[L];
    std::memcpy(out, &acc0[r], sizeof(V));
    std::memcpy(out + VL, &acc1[r], sizeof(V));
    T* cr = c + r * ldc;
    if (accumulate)
      for (int l = 0; l < width; ++l) cr[l] += out[l];
    else
      for (int l = 0; l < width; ++l) cr[l] = out[l];
  }
}

template <typename T>
void panel_gemm(int64_t rows, int64_t k, const T* a, int64_t lda, const T* panels,
                int64_t count, const int64_t* col, const int* width, const T* bias, T* c,
                int64_t ldc, bool accumulate) {
  constexpr int L = kPanelLanes<T>;
  for (int64_t p = 0; p < count; ++p) {
    const T* panel = panels + p * k * L;
    const T* bp = bias ? bias + col[p] : nullptr;
    T* cp = c + col[p];
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
      panel_block<T, 4>(k, a + r * lda, lda, panel, bp, cp + r * ldc, ldc, width[p], accumulate);
    for (; r < rows; ++r)
      panel_block<T, 1>(k, a + r * lda, lda, panel, bp, cp + r * ldc, ldc, width[p], accumulate);
  }
}

}  // namespace
}  // namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA)
