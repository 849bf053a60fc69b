// Small once-per-call helpers the LSTM and GRU sequence kernels share: biases, bias
// gradients, initial states, gate-block fills and copies.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

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

// Columns [begin, end) of rows x ld src into dst, unless they are the same buffer: where a
// double-buffered loop's last step left a thread's part of the state.
template <typename T>
void settle_columns(const T* src, T* dst, int64_t rows, int64_t ld, int64_t begin, int64_t end) {
  if (src == dst) return;
  for (int64_t r = 0; r < rows; ++r)
    std::copy(src + r * ld + begin, src + r * ld + end, dst + r * ld + begin);
}

}  // namespace fusedrnn::cpu
