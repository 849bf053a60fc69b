// Once-per-call helpers the LSTM and GRU sequence kernels share: biases, the input projection
// as one large GEMM (for the loops that run on one thread), bias gradients, gate-block copies.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "blas.hpp"
#include "step_order.hpp"

namespace fusedrnn::cpu {

// bias_a + bias_b [n] (either may be null); empty when both are.
template <typename T>
std::vector<T> bias_sum(int64_t n, const T* bias_a, const T* bias_b) {
  std::vector<T> bias;
  if (!bias_a && !bias_b) return bias;
  bias.assign(n, T(0));
  for (int64_t j = 0; j < n; ++j) bias[j] = (bias_a ? bias_a[j] : T(0)) + (bias_b ? bias_b[j] : T(0));
  return bias;
}

// xproj[T*B, N] = X[T*B, K] @ W[N, K]^T + bias, where bias is the sum of up to two [N]
// vectors (either may be null). The one large GEMM that replaces T small ones.
template <typename T>
void input_projection(int threads, int64_t rows, int64_t n, int64_t k, const T* x, const T* w,
                      const T* bias_a, const T* bias_b, T* out) {
  T beta = T(0);
  const std::vector<T> bias = bias_sum(n, bias_a, bias_b);
  if (!bias.empty()) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * n, bias.data(), n * sizeof(T));
    beta = T(1);
  }
  parallel_gemm<T>(threads, false, true, rows, n, k, x, k, w, k, beta, out, n);
}

// out[N] = sum over rows of m[rows, N] (a bias gradient). Null out: nothing wanted.
template <typename T>
void column_sums(int64_t rows, int64_t n, const T* m, T* out) {
  if (!out) return;
  std::fill(out, out + n, T(0));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) out[j] += m[r * n + j];
}

// dst[B, N] = src (or zeros when src is null).
template <typename T>
void copy_or_zero(int64_t count, const T* src, T* dst) {
  if (src) std::memcpy(dst, src, count * sizeof(T));
  else std::fill(dst, dst + count, T(0));
}

// Sets `gates` gate blocks of n units (stride H) to v: the padding rows of a gate array.
template <typename T>
void fill_gates(T* row, int gates, int64_t H, int64_t n, T v) {
  for (int g = 0; g < gates; ++g) std::fill(row + g * H, row + g * H + n, v);
}

template <typename T>
void copy_gates(const T* src, T* dst, int gates, int64_t H, int64_t n) {
  for (int g = 0; g < gates; ++g) std::copy(src + g * H, src + g * H + n, dst + g * H);
}

}  // namespace fusedrnn::cpu
