// The GEMMs on the weights as the caller holds them (included by step_kernels.cpp only, once
// per SIMD level). row_gemm: each output column is a dot product of an input row with a
// weight row, k contiguous values each (the forward's w_ih and w_hh). column_gemm: the output
// columns are runs of contiguous columns of the weights (the backward's w_hh). They pack
// nothing, so they serve the loops of a few steps, where packing the weights into panels (a
// read and a write of each) would cost more than the panels save (time_loops.hpp,
// unpacked_weights_pay).
#pragma once

#include <cstdint>
#include <cstring>

#include "fusedrnn/gate_math.hpp"
#include "panel_gemm.hpp"  // Vec

namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA) {
namespace {

// A dot product's vector of partial sums becomes one value by one tree for every output
// element, whichever path takes it (four at once, or one), so that the results do not depend
// on how the columns and rows are blocked: halve to four lanes m (lane l plus lane l + half),
// then (m0 + m1) + (m2 + m3); two lanes (the generic build's double): m0 + m1.
template <typename T, typename V>
FUSEDRNN_HD T lane_sum(V v) {
  constexpr int VL = sizeof(V) / sizeof(T);
  T m[VL];
  std::memcpy(m, &v, sizeof v);
  if constexpr (VL == 2) {
    return m[0] + m[1];
  } else {
#pragma GCC unroll 8
    for (int half = VL / 2; half >= 4; half /= 2)
#pragma GCC unroll 8
      for (int l = 0; l < half; ++l) m[l] += m[l + half];
    return (m[0] + m[1]) + (m[2] + m[3]);
  }
}

// Four lanes of T, and a vector halved to them as lane_sum halves it.
template <typename T>
struct Quad {
  typedef T type __attribute__((vector_size(4 * sizeof(T))));
};

template <typename T, typename V>
FUSEDRNN_HD typename Quad<T>::type to_quad(V v) {
  constexpr int VL = sizeof(V) / sizeof(T);
  static_assert(VL == 4 || VL == 8 || VL == 16, "a vector of 4, 8 or 16 lanes");
  if constexpr (VL == 16) {
    typedef T Oct __attribute__((vector_size(8 * sizeof(T))));
    const Oct lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    const Oct hi = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    return to_quad<T>(lo + hi);
  } else if constexpr (VL == 8) {
    return __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
  } else {
    return v;
  }
}

// lane_sum of four vectors at once: [lane_sum(a), lane_sum(b), lane_sum(c), lane_sum(d)].
template <typename T, typename V>
FUSEDRNN_HD typename Quad<T>::type lane_sums(V a, V b, V c, V d) {
  using Q = typename Quad<T>::type;
  const Q qa = to_quad<T>(a), qb = to_quad<T>(b), qc = to_quad<T>(c), qd = to_quad<T>(d);
  // [a0 + a1, a2 + a3, b0 + b1, b2 + b3], then the same of those pairs
  const Q ab = __builtin_shufflevector(qa, qb, 0, 2, 4, 6) +
               __builtin_shufflevector(qa, qb, 1, 3, 5, 7);
  const Q cd = __builtin_shufflevector(qc, qd, 0, 2, 4, 6) +
               __builtin_shufflevector(qc, qd, 1, 3, 5, 7);
  return __builtin_shufflevector(ab, cd, 0, 2, 4, 6) + __builtin_shufflevector(ab, cd, 1, 3, 5, 7);
}

// c[r * ldc + j] (+)= bias[j] + sum(j, r), for J columns of row r; sums four at a time where
// the vectors allow.
template <typename T, int R, int J, typename V>
FUSEDRNN_HD void store_sums(const V (&acc)[J][R], int r, const T* bias, T* c, bool accumulate) {
  using Q = typename Quad<T>::type;
  int j = 0;
  if constexpr (sizeof(V) / sizeof(T) >= 4) {
    for (; j + 4 <= J; j += 4) {
      Q out = lane_sums<T>(acc[j][r], acc[j + 1][r], acc[j + 2][r], acc[j + 3][r]);
      if (bias) {
        Q b;
        std::memcpy(&b, bias + j, sizeof b);
        out = b + out;
      }
      if (accumulate) {
        Q old;
        std::memcpy(&old, c + j, sizeof old);
        out = old + out;
      }
      std::memcpy(c + j, &out, sizeof out);
    }
  }
  for (; j < J; ++j) {
    T out = lane_sum<T>(acc[j][r]);
    if (bias) out = bias[j] + out;
    c[j] = accumulate ? c[j] + out : out;
  }
}

// The last n < VL values of a row, zero-filled to a vector (only where k is not a multiple of
// the vector width).
template <typename T, typename V>
FUSEDRNN_HD V tail_of(const T* p, int64_t n) {
  T lanes[sizeof(V) / sizeof(T)] = {};
  for (int64_t l = 0; l < n; ++l) lanes[l] = p[l];
  V v;
  std::memcpy(&v, lanes, sizeof v);
  return v;
}

// R input rows by J weight rows: R * J accumulators (at most 12, which with 3 row vectors and
// a weight vector fill the 16 AVX2 registers), each summing a vector of products a step of k;
// a short tail of k is read into zeroed vectors, so that every element sees the same
// operations.
template <typename T, int R, int J>
FUSEDRNN_HD void row_block(int64_t k, const T* __restrict a, int64_t lda, const T* __restrict w,
                           int64_t ldw, const T* next, const T* bias, T* c, int64_t ldc,
                           bool accumulate) {
  using V = typename Vec<T>::type;
  constexpr int VL = sizeof(V) / sizeof(T);
  V acc[J][R];
#pragma GCC unroll 8
  for (int j = 0; j < J; ++j)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[j][r] = V{};
  int64_t i = 0;
  for (; i + VL <= k; i += VL) {
    V av[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) std::memcpy(&av[r], a + r * lda + i, sizeof(V));
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) {
      V wv;
      std::memcpy(&wv, w + j * ldw + i, sizeof wv);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[j][r] += av[r] * wv;
      if (next) __builtin_prefetch(next + j * ldw + i);
    }
  }
  if (i < k) {
    V av[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) av[r] = tail_of<T, V>(a + r * lda + i, k - i);
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) {
      const V wv = tail_of<T, V>(w + j * ldw + i, k - i);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[j][r] += av[r] * wv;
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) store_sums<T, R, J>(acc, r, bias, c + r * ldc, accumulate);
}

// Every row block against J weight rows, which stay in L1 meanwhile: the weights stream past
// once, the input rows are read again from L1 or L2. Blocks of 3 rows, the last 4 as 2 + 2
// (a lone row has too few independent sums to hide the FMA latency).
template <typename T, int J>
FUSEDRNN_HD void row_columns(int64_t rows, int64_t k, const T* a, int64_t lda, const T* w,
                             int64_t ldw, const T* bias, T* c, int64_t ldc, bool accumulate) {
  const T* next = w + J * ldw;  // the first row block fetches the next J rows meanwhile
  int64_t r = 0;
  for (; rows - r >= 3 && rows - r != 4; r += 3, next = nullptr)
    row_block<T, 3, J>(k, a + r * lda, lda, w, ldw, next, bias, c + r * ldc, ldc, accumulate);
  for (; rows - r >= 2; r += 2, next = nullptr)
    row_block<T, 2, J>(k, a + r * lda, lda, w, ldw, next, bias, c + r * ldc, ldc, accumulate);
  if (rows - r == 1)
    row_block<T, 1, J>(k, a + r * lda, lda, w, ldw, next, bias, c + r * ldc, ldc, accumulate);
}

// Columns [j, end) of one group, J at a time, then one at a time.
template <typename T, int J>
FUSEDRNN_HD void row_group(int64_t j, int64_t end, int64_t rows, int64_t k, const T* a,
                           int64_t lda, const T* w, int64_t ldw, const T* bias, T* c,
                           int64_t ldc, bool accumulate) {
  for (; j + J <= end; j += J)
    row_columns<T, J>(rows, k, a, lda, w + j * ldw, ldw, bias ? bias + j : nullptr, c + j, ldc,
                      accumulate);
  for (; j < end; ++j)
    row_columns<T, 1>(rows, k, a, lda, w + j * ldw, ldw, bias ? bias + j : nullptr, c + j, ldc,
                      accumulate);
}

// c[r, j] (+)= bias[j] + sum_i a[r, i] * w[j * ldw + i], for the columns j of each of `count`
// groups [col[p], col[p] + width[p]) (a PanelSet's panels, left unpacked), r < rows; bias may
// be null. One row takes eight columns at a time (eight independent sums), more rows four.
template <typename T>
void row_gemm(int64_t rows, int64_t k, const T* a, int64_t lda, const T* w, int64_t ldw,
              int64_t count, const int64_t* col, const int* width, const T* bias, T* c,
              int64_t ldc, bool accumulate) {
  for (int64_t p = 0; p < count; ++p) {
    if (rows == 1)
      row_group<T, 8>(col[p], col[p] + width[p], rows, k, a, lda, w, ldw, bias, c, ldc,
                      accumulate);
    else
      row_group<T, 4>(col[p], col[p] + width[p], rows, k, a, lda, w, ldw, bias, c, ldc,
                      accumulate);
  }
}

// R input rows by one group of up to L = kPanelLanes columns (two vectors): 2 R accumulators,
// summed over k in order, as panel_block sums a packed panel (so the same bits). A whole group
// is two vector loads a row of w; a short one (the last columns of w) is read lane by lane,
// never past its end.
template <typename T, int R, bool kWhole>
FUSEDRNN_HD void column_block(int64_t k, const T* __restrict a, int64_t lda,
                              const T* __restrict w, int64_t ldw, int width, T* c, int64_t ldc,
                              bool accumulate) {
  using V = typename Vec<T>::type;
  constexpr int L = kPanelLanes<T>, VL = L / 2;
  V acc0[R], acc1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = V{};
  for (int64_t i = 0; i < k; ++i) {
    V w0, w1;
    if (kWhole) {
      std::memcpy(&w0, w + i * ldw, sizeof w0);
      std::memcpy(&w1, w + i * ldw + VL, sizeof w1);
    } else {
      T lanes[L] = {};
      for (int l = 0; l < width; ++l) lanes[l] = w[i * ldw + l];
      std::memcpy(&w0, lanes, sizeof w0);
      std::memcpy(&w1, lanes + VL, sizeof w1);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const T av = a[r * lda + i];
      acc0[r] += av * w0;
      acc1[r] += av * w1;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    T out[L];
    std::memcpy(out, &acc0[r], sizeof(V));
    std::memcpy(out + VL, &acc1[r], sizeof(V));
    T* cr = c + r * ldc;
    for (int l = 0; l < width; ++l) cr[l] = accumulate ? cr[l] + out[l] : out[l];
  }
}

// Every row block (6 rows: 12 accumulators, then 4, then the last 1-3) against one group,
// whose k runs stay in L1 or L2 meanwhile.
template <typename T, bool kWhole>
FUSEDRNN_HD void column_group(int64_t rows, int64_t k, const T* a, int64_t lda, const T* w,
                              int64_t ldw, int width, T* c, int64_t ldc, bool accumulate) {
  int64_t r = 0;
  for (; rows - r >= 6 && rows - r != 8; r += 6)
    column_block<T, 6, kWhole>(k, a + r * lda, lda, w, ldw, width, c + r * ldc, ldc, accumulate);
  for (; rows - r >= 4; r += 4)
    column_block<T, 4, kWhole>(k, a + r * lda, lda, w, ldw, width, c + r * ldc, ldc, accumulate);
  switch (rows - r) {
    case 3:
      return column_block<T, 3, kWhole>(k, a + r * lda, lda, w, ldw, width, c + r * ldc, ldc,
                                        accumulate);
    case 2:
      return column_block<T, 2, kWhole>(k, a + r * lda, lda, w, ldw, width, c + r * ldc, ldc,
                                        accumulate);
    case 1:
      return column_block<T, 1, kWhole>(k, a + r * lda, lda, w, ldw, width, c + r * ldc, ldc,
                                        accumulate);
    default:
      return;
  }
}

// c[r, j] (+)= sum_i a[r, i] * w[i * ldw + j], for the columns j of each of `count` groups
// [col[p], col[p] + width[p]) (a PanelSet's panels of a backward layout, left unpacked), r <
// rows.
template <typename T>
void column_gemm(int64_t rows, int64_t k, const T* a, int64_t lda, const T* w, int64_t ldw,
                 int64_t count, const int64_t* col, const int* width, T* c, int64_t ldc,
                 bool accumulate) {
  for (int64_t p = 0; p < count; ++p) {
    if (width[p] == kPanelLanes<T>)
      column_group<T, true>(rows, k, a, lda, w + col[p], ldw, width[p], c + col[p], ldc,
                            accumulate);
    else
      column_group<T, false>(rows, k, a, lda, w + col[p], ldw, width[p], c + col[p], ldc,
                             accumulate);
  }
}

}  // namespace
}  // namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA)
