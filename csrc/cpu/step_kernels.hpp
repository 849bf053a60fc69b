// The step kernels: what runs inside the time loop. The recurrent GEMM on packed weight panels,
// and the per-row gate kernels (everything after that GEMM, for one batch row). step_kernels.cpp
// is compiled once per SIMD level (generic, AVX2+FMA, AVX-512) and step_kernels<T>() hands out
// the best one this CPU runs.
//
// Gate blocks are laid out as in the weights: row[k * H + j] is gate k of unit j. Each kernel
// handles units [0, n) of rows whose gate stride is H, so a thread passes pointers offset to
// its first unit and n = its share. Pointers never alias one another; "or null" arguments are
// skipped when null. The gru_forward_reset rz row has stride H too (r block, then z block).
#pragma once

#include <cstdint>

namespace fusedrnn::cpu {

template <typename T>
struct StepKernels {
  const char* isa;

  // LSTM forward: c [H] is updated in place from the pre-activations xr + hr [4H]; h [H]
  // gets o * tanh(c). Training: gates [4H] gets i, f, g, o and c_prev [H] the old c.
  void (*lstm_forward)(const T* xr, const T* hr, T* c, T* h, T* gates, T* c_prev, int64_t H, int64_t n);

  // LSTM backward: from the saved gates [4H], c_prev [H] and dh [H] (gradient of
  // o * tanh(c)), writes dg [4H] (pre-activation gradients) and turns dc [H] (in: from the
  // next step) into the gradient of c_prev. h_tilde [H] or null: gets o * tanh(c).
  void (*lstm_backward)(const T* gates, const T* c_prev, const T* dh, T* dc, T* dg, T* h_tilde,
                        int64_t H, int64_t n);

  // GRU, linear_before_reset: xr [3H] with the folded biases, hr [3H] = W_hh h, b_hn [H].
  // Writes the new state to h [H] (from h_prev [H]) and to y [H]. gates [4H] or null: r, z, n,
  // W_hn h + b_hn.
  void (*gru_forward_lbr)(const T* xr, const T* hr, const T* b_hn, const T* h_prev, T* h,
                          T* y, T* gates, int64_t H, int64_t n);

  // Original GRU, first half: rz [2H] holds W_hr h, W_hz h and becomes r, z; rh [H] = r * h.
  void (*gru_forward_reset)(const T* xr, T* rz, const T* h, T* rh, int64_t H, int64_t n);

  // Original GRU, second half: n = tanh(xr_n + hn) with hn [H] = W_hn (r * h); updates h,
  // copies to y. gates [3H] or null: r, z, n.
  void (*gru_forward_new)(const T* xr, const T* rz, const T* hn, T* h, T* y, T* gates,
                          int64_t H, int64_t n);

  // GRU backward, linear_before_reset: dh [H] is the total gradient of this step's output.
  // Writes dgh [3H] (h-side pre-activations), dgx [3H] (x-side), dh_prev [H] (direct path).
  void (*gru_backward_lbr)(const T* gates, const T* h_prev, const T* dh, T* dgh, T* dgx,
                           T* dh_prev, int64_t H, int64_t n);

  // Original GRU backward, first half: dg [3H] gets the z and n blocks; dh_prev [H] the direct
  // path. Second half, after drh [H] = dg_n @ W_hn: dg's r block, and dh_prev += drh * r.
  void (*gru_backward_blend)(const T* gates, const T* h_prev, const T* dh, T* dg, T* dh_prev,
                             int64_t H, int64_t n);
  void (*gru_backward_reset)(const T* gates, const T* h_prev, const T* drh, T* dg, T* dh_prev,
                             int64_t H, int64_t n);

  // Columns per weight panel (two SIMD vectors); PanelSet packs weights for this width.
  int panel_lanes;

  // c[:, j] (+)= bias[j] + sum_k a[:, k] * panels[p][k][l], j = col[p] + l, for each of
  // `count` panels, l < width[p], `rows` x `k` inputs a (row stride lda); bias may be null.
  // The recurrent and input GEMMs, on weights packed once per call so that each thread
  // streams its own slice from its own cache.
  void (*panel_gemm)(int64_t rows, int64_t k, const T* a, int64_t lda, const T* panels,
                     int64_t count, const int64_t* col, const int* width, const T* bias, T* c,
                     int64_t ldc, bool accumulate);

  // The same product on the weights as the caller holds them, unpacked: c[:, j] (+)= bias[j]
  // + sum_k a[:, k] * w[j * ldw + k] for the columns j of the same `count` groups (a PanelSet
  // left unpacked, PanelSet::refer_gate_columns). For the loops of a few steps.
  void (*row_gemm)(int64_t rows, int64_t k, const T* a, int64_t lda, const T* w, int64_t ldw,
                   int64_t count, const int64_t* col, const int* width, const T* bias, T* c,
                   int64_t ldc, bool accumulate);

  // The backward's product on the weights as the caller holds them: c[:, j] (+)= sum_k a[:, k]
  // * w[k * ldw + j] for the columns j of `count` groups (PanelSet::refer_columns), summed as
  // panel_gemm sums them (the same bits).
  void (*column_gemm)(int64_t rows, int64_t k, const T* a, int64_t lda, const T* w, int64_t ldw,
                      int64_t count, const int64_t* col, const int* width, T* c, int64_t ldc,
                      bool accumulate);

  // Diagnostics: `iterations` rounds of independent register-only FMAs at this level's vector
  // width (scale, step: their operands; sink: a checksum). Returns the FLOPs done, so that
  // FLOPs / seconds is the core's arithmetic peak (fma_peak_flops).
  int64_t (*fma_burst)(int64_t iterations, T scale, T step, T* sink);

  // Diagnostics: `passes` reads of n values of data (n a multiple of four panel widths) as the
  // batch-1 recurrent product reads its panels, one multiply-add a vector (sink: a checksum).
  // Returns the bytes read, so that bytes / seconds is the rate of a step that only streams
  // its weights (stream_read_rate).
  int64_t (*stream_burst)(const T* data, int64_t n, int64_t passes, T scale, T* sink);
};

// The kernels for this CPU: the best SIMD level it supports, capped by the environment
// variable FUSEDRNN_SIMD (generic, avx2, avx512) when set.
template <typename T>
const StepKernels<T>& step_kernels();

}  // namespace fusedrnn::cpu
