// What the LSTM and GRU sequence kernels share: the order in which (time, batch) rows are
// visited, and the large GEMMs that run once per call rather than once per step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "blas.hpp"
#include "panels.hpp"
#include "step_kernels.hpp"
#include "thread_team.hpp"

namespace fusedrnn::cpu {

// Step s of the recurrence visits batch row b at time time(s, b). Forward: t = s. Reverse:
// t = len_b - 1 - s, so each sequence starts at its own last valid step. Rows with
// s >= len_b are padding; they map to t = s, which makes the map a bijection of [0, T) per row
// so that every (t, b) of y and of the saved block is written exactly once.
class StepOrder {
 public:
  StepOrder(int64_t steps, const int64_t* lengths, bool reverse)
      : steps_(steps), lengths_(lengths), reverse_(reverse) {}

  int64_t length(int64_t b) const { return lengths_ ? lengths_[b] : steps_; }
  bool valid(int64_t s, int64_t b) const { return s < length(b); }
  int64_t time(int64_t s, int64_t b) const {
    return (reverse_ && valid(s, b)) ? length(b) - 1 - s : s;
  }
  // True when all rows of a step share one time index, so the step's rows are one
  // contiguous [B, ...] block of any time-major array.
  bool steps_are_blocks() const { return !(reverse_ && lengths_); }
  int64_t block_time(int64_t s) const { return reverse_ ? steps_ - 1 - s : s; }
  bool has_padding() const { return lengths_ != nullptr; }

 private:
  int64_t steps_;
  const int64_t* lengths_;
  bool reverse_;
};

// xproj[T*B, N] = X[T*B, K] @ W[N, K]^T + bias, where bias is the sum of up to two [N]
// vectors (either may be null). The one large GEMM that replaces T small ones.
template <typename T>
void input_projection(int threads, int64_t rows, int64_t n, int64_t k, const T* x, const T* w,
                      const T* bias_a, const T* bias_b, T* out) {
  T beta = T(0);
  if (bias_a || bias_b) {
    std::vector<T> bias(n, T(0));
    for (int64_t j = 0; j < n; ++j) bias[j] = (bias_a ? bias_a[j] : T(0)) + (bias_b ? bias_b[j] : T(0));
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

// A [B, N] row view of a time-major [T, B, N] array at step s, row b.
template <typename T>
T* row_at(T* base, const StepOrder& order, int64_t s, int64_t b, int64_t batch, int64_t n) {
  return base + (order.time(s, b) * batch + b) * n;
}

// How the time loop is split: each thread owns a range of hidden units (whole SIMD panels),
// computes every gate of those units, and packs the recurrent weights it needs.
template <typename T>
struct TeamPlan {
  int threads = 1;
  std::vector<Range> units;             // per thread
  std::vector<PanelSet<T>> forward;     // per thread: w_hh rows of its units' gates
  std::vector<PanelSet<T>> backward;    // per thread: w_hh columns of its units (no projection)

  // gates G, hidden H, recurrent input size K (H, or P with projection), lanes per panel,
  // at most max_threads threads (0: the team's size).
  TeamPlan(const T* w_hh, int gates, int64_t hidden, int64_t k, int lanes, bool training,
           int max_threads) {
    threads = static_cast<int>(
        std::max<int64_t>(1, std::min<int64_t>(threads_for(max_threads), hidden / lanes)));
    for (int t = 0; t < threads; ++t) {
      const Range u = split_range(hidden, threads, t, lanes);
      units.push_back(u);
      PanelSet<T> f(k, lanes);
      for (int g = 0; g < gates; ++g)
        f.add_columns(w_hh, k, 1, g * hidden + u.begin, g * hidden + u.end);
      forward.push_back(std::move(f));
      if (training) {  // dh[:, u] = dG @ w_hh[:, u]: reduction over all G*H gate rows
        PanelSet<T> b(gates * hidden, lanes);
        b.add_columns(w_hh, 1, k, u.begin, u.end);
        backward.push_back(std::move(b));
      }
    }
  }
};

template <typename T>
void panel_gemm(const StepKernels<T>& kernels, const PanelSet<T>& panels, int64_t rows,
                const T* a, int64_t lda, T* c, int64_t ldc, bool accumulate) {
  if (panels.count() == 0) return;
  kernels.panel_gemm(rows, panels.k, a, lda, panels.data.data(), panels.count(),
                     panels.col.data(), panels.width.data(), c, ldc, accumulate);
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
