// The recurrent GEMM's micro-kernel (included by step_kernels.cpp only, once per SIMD level).
// A panel is `lanes` output columns (two SIMD vectors) by k; each block of up to 6 input rows
// keeps its 6 x 2 accumulators in registers while the panel streams past once.
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

// R rows by NP panels: 2 * R * NP accumulators in registers while the panels stream past.
// Each output element still sums over k in order, so every grouping gives the same bits.
template <typename T, int R, int NP>
FUSEDRNN_HD void panel_block(int64_t k, const T* __restrict a, int64_t lda,
                             const T* __restrict panels, const T* const* bias,
                             T* const* c, int64_t ldc, const int* width, bool accumulate) {
  using V = typename Vec<T>::type;
  constexpr int L = kPanelLanes<T>, VL = L / 2;
  V acc0[NP][R], acc1[NP][R];
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q) {
    V b0{}, b1{};
    if (bias[q] && width[q] == L) {  // a whole panel: two vector loads, as the stores below
      std::memcpy(&b0, bias[q], sizeof b0);
      std::memcpy(&b1, bias[q] + VL, sizeof b1);
    } else if (bias[q]) {
      T lanes[L] = {};
      for (int l = 0; l < width[q]; ++l) lanes[l] = bias[q][l];
      std::memcpy(&b0, lanes, sizeof b0);
      std::memcpy(&b1, lanes + VL, sizeof b1);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      acc0[q][r] = b0;
      acc1[q][r] = b1;
    }
  }
  for (int64_t i = 0; i < k; ++i) {
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) {
      V w0, w1;
      std::memcpy(&w0, panels + (q * k + i) * L, sizeof w0);
      std::memcpy(&w1, panels + (q * k + i) * L + VL, sizeof w1);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const T av = a[r * lda + i];
        acc0[q][r] += av * w0;
        acc1[q][r] += av * w1;
      }
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      T* cr = c[q] + r * ldc;
      if (width[q] == L) {  // a whole panel: two vector stores (the lane loop below became a
        V o0 = acc0[q][r], o1 = acc1[q][r];  // memcpy call a row; 16x256x512: 94.7 -> 98 GFLOP/s)
        if (accumulate) {
          V c0, c1;
          std::memcpy(&c0, cr, sizeof c0);
          std::memcpy(&c1, cr + VL, sizeof c1);
          o0 += c0;
          o1 += c1;
        }
        std::memcpy(cr, &o0, sizeof o0);
        std::memcpy(cr + VL, &o1, sizeof o1);
        continue;
      }
      T out[L];
      std::memcpy(out, &acc0[q][r], sizeof(V));
      std::memcpy(out + VL, &acc1[q][r], sizeof(V));
      if (accumulate)
        for (int l = 0; l < width[q]; ++l) cr[l] += out[l];
      else
        for (int l = 0; l < width[q]; ++l) cr[l] = out[l];
    }
  }
}

// Rows [r0, r0 + R) against every panel, NP panels at a time (then one at a time).
template <typename T, int R, int NP>
FUSEDRNN_HD void panel_rows(int64_t r0, int64_t k, const T* a, int64_t lda, const T* panels,
                            int64_t count, const int64_t* col, const int* width, const T* bias,
                            T* c, int64_t ldc, bool accumulate) {
  constexpr int L = kPanelLanes<T>;
  int64_t p = 0;
  for (; p + NP <= count; p += NP) {
    const T* bs[NP];
    T* cs[NP];
    for (int q = 0; q < NP; ++q) {
      bs[q] = bias ? bias + col[p + q] : nullptr;
      cs[q] = c + r0 * ldc + col[p + q];
    }
    panel_block<T, R, NP>(k, a + r0 * lda, lda, panels + p * k * L, bs, cs, ldc, width + p,
                          accumulate);
  }
  for (; p < count; ++p) {
    const T* bs[1] = {bias ? bias + col[p] : nullptr};
    T* cs[1] = {c + r0 * ldc + col[p]};
    panel_block<T, R, 1>(k, a + r0 * lda, lda, panels + p * k * L, bs, cs, ldc, width + p,
                         accumulate);
  }
}

// Rows of `a` per tile. Up to a few MiB of panels stream fast enough from L3 (~50 GB/s a
// core here) for one block of 6 rows held in L1 to meet every panel in turn (90-96 GFLOP/s at
// 4 MiB, k = 512, 64 rows, one thread). Larger panel sets come from memory: then a tile of
// rows (up to 128 KiB, kept in L2) meets each panel in turn, so that the panels are read once
// per tile, in equal tiles (a short last tile would read them all again for little work). At
// 16 MiB (B=32, H=1024 LSTM, one thread, 4-row blocks): 42-56 -> 69-72 GFLOP/s.
template <typename T>
int64_t row_tile(int64_t rows, int64_t k, int64_t panel_bytes) {
  constexpr int64_t kL3Bytes = int64_t(4) << 20, kTileBytes = 128 * 1024;
  if (panel_bytes <= kL3Bytes || k <= 0) return 6;
  int64_t most = kTileBytes / (k * int64_t(sizeof(T)));
  if (most < 6) most = 6;  // no std::max/min: see gate_rows.hpp
  const int64_t tiles = (rows + most - 1) / most;
  return (rows + tiles - 1) / tiles;
}

// Rows [r0, r1) against one panel: blocks of 6 rows (12 accumulators: two panel loads and six
// broadcasts per step of k, enough independent FMA chains to cover the FMA latency, 4 cycles
// on 2 pipes on Zen 3, with room to spare; and each panel load serves 6 rows, so a panel that
// spills L1, k = 1024, costs 2/3 of the L2 traffic of 4-row blocks), then blocks of 4 (8 is
// 4 + 4), then the last 1-3 rows while the panel is still in L1. One thread, min of 5,
// GFLOP/s, 4-row -> 6-row blocks: 64 x 512 x 1024 columns 93-94 -> 95-97; 32 x 1024 x 2048
// 68-70 -> 81-87.
template <typename T>
void panel_column(int64_t r0, int64_t r1, int64_t k, const T* a, int64_t lda, const T* panel,
                  const T* bias, T* c, int64_t ldc, const int* width, bool accumulate) {
  const T* bs[1] = {bias};
  T* cs[1];
  int64_t r = r0;
  for (; r1 - r >= 6 && r1 - r != 8; r += 6) {
    cs[0] = c + r * ldc;
    panel_block<T, 6, 1>(k, a + r * lda, lda, panel, bs, cs, ldc, width, accumulate);
  }
  for (; r1 - r >= 4; r += 4) {
    cs[0] = c + r * ldc;
    panel_block<T, 4, 1>(k, a + r * lda, lda, panel, bs, cs, ldc, width, accumulate);
  }
  cs[0] = c + r * ldc;
  switch (r1 - r) {
    case 3:
      panel_block<T, 3, 1>(k, a + r * lda, lda, panel, bs, cs, ldc, width, accumulate);
      break;
    case 2:
      panel_block<T, 2, 1>(k, a + r * lda, lda, panel, bs, cs, ldc, width, accumulate);
      break;
    case 1:
      panel_block<T, 1, 1>(k, a + r * lda, lda, panel, bs, cs, ldc, width, accumulate);
      break;
    default:
      break;
  }
}

// Tiles of rows (row_tile; the last tile takes up to 3 rows more rather than leave them a
// tile of their own, which would stream every panel again for them), each meeting every
// panel in turn (panel_column). Fewer than 4 rows (batch 1-3) take several panels at once
// instead, so that enough independent FMA chains hide the FMA latency. Every output element
// is summed over k in the same order whatever the blocking, so the results do not depend on it.
template <typename T>
void panel_gemm(int64_t rows, int64_t k, const T* a, int64_t lda, const T* panels,
                int64_t count, const int64_t* col, const int* width, const T* bias, T* c,
                int64_t ldc, bool accumulate) {
  constexpr int L = kPanelLanes<T>;
  switch (rows) {
    case 3:
      return panel_rows<T, 3, 1>(0, k, a, lda, panels, count, col, width, bias, c, ldc,
                                 accumulate);
    case 2:
      return panel_rows<T, 2, 2>(0, k, a, lda, panels, count, col, width, bias, c, ldc,
                                 accumulate);
    case 1:
      return panel_rows<T, 1, 4>(0, k, a, lda, panels, count, col, width, bias, c, ldc,
                                 accumulate);
    case 0:
      return;
    default:
      break;
  }
  const int64_t tile = row_tile<T>(rows, k, count * k * L * int64_t(sizeof(T)));
  for (int64_t r0 = 0; r0 < rows;) {
    const int64_t r1 = rows - r0 <= tile + 3 ? rows : r0 + tile;
    for (int64_t p = 0; p < count; ++p)
      panel_column<T>(r0, r1, k, a, lda, panels + p * k * L, bias ? bias + col[p] : nullptr,
                      c + col[p], ldc, width + p, accumulate);
    r0 = r1;
  }
}

}  // namespace
}  // namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA)
