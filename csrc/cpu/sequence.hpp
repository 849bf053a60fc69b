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
// bias_a + bias_b [n] (either may be null); empty when both are.
template <typename T>
std::vector<T> bias_sum(int64_t n, const T* bias_a, const T* bias_b) {
  std::vector<T> bias;
  if (!bias_a && !bias_b) return bias;
  bias.assign(n, T(0));
  for (int64_t j = 0; j < n; ++j) bias[j] = (bias_a ? bias_a[j] : T(0)) + (bias_b ? bias_b[j] : T(0));
  return bias;
}

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
  std::vector<PanelSet<T>> input;       // per thread: w_ih rows of its units' gates (forward)

  // Multiply-adds of the recurrent GEMM per step below which one thread runs the whole loop:
  // a barrier per step costs more than it saves there, and on a shared (virtual) machine a
  // descheduled partner stalls every step. Measured on the 2-core AVX2 machine, T=100, B=1,
  // H=256 LSTM inference (262k per step), median of 15: 4.5 ms on one thread, 11.0 ms on two.
  static constexpr int64_t kWorkPerThread = int64_t(1) << 20;

  // gates G, hidden H, recurrent input size K (H, or P with projection), batch B, lanes per
  // panel, at most max_threads threads (0: the team's size). w_ih [G*H, I] or null: pack it
  // too.
  TeamPlan(const T* w_hh, int gates, int64_t hidden, int64_t k, int64_t batch, int lanes,
           bool training, int max_threads, const T* w_ih = nullptr, int64_t in = 0) {
    const int64_t work = batch * gates * hidden * k;
    threads = static_cast<int>(std::max<int64_t>(
        1, std::min({int64_t(threads_for(max_threads)), hidden / lanes, work / kWorkPerThread})));
    for (int t = 0; t < threads; ++t) {
      const Range u = split_range(hidden, threads, t, lanes);
      units.push_back(u);
      PanelSet<T> f(k, lanes);
      for (int g = 0; g < gates; ++g)
        f.add_columns(w_hh, k, 1, g * hidden + u.begin, g * hidden + u.end);
      forward.push_back(std::move(f));
      if (w_ih) {
        PanelSet<T> x(in, lanes);
        for (int g = 0; g < gates; ++g)
          x.add_columns(w_ih, in, 1, g * hidden + u.begin, g * hidden + u.end);
        input.push_back(std::move(x));
      }
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
                const T* a, int64_t lda, T* c, int64_t ldc, bool accumulate,
                const T* bias = nullptr) {
  if (panels.count() == 0) return;
  kernels.panel_gemm(rows, panels.k, a, lda, panels.data.data(), panels.count(),
                     panels.col.data(), panels.width.data(), bias, c, ldc, accumulate);
}

// The input projection x @ w_ih^T + bias inside the team's time loop: each thread computes
// its own gate columns, a chunk of steps at a time just before the loop needs them, so the
// chunk stays in that thread's cache and needs no barrier. Scattered steps (reverse with
// lengths) take the whole projection at once.
template <typename T>
class StepProjection {
 public:
  StepProjection(const StepOrder& order, int64_t steps, int64_t batch, int64_t width,
                 int64_t input, const T* x, const T* bias)
      : order_(order), steps_(steps), batch_(batch), width_(width), input_(input), x_(x),
        bias_(bias),
        chunk_(order.steps_are_blocks() ? std::min<int64_t>(steps, std::max<int64_t>(1, 128 / std::max<int64_t>(batch, 1))) : steps),
        data_(chunk_ * batch * width) {}

  // Called by every thread at every step s, before it reads the step's rows.
  void prepare(const StepKernels<T>& kernels, const PanelSet<T>& panels, int64_t s) {
    if (s % chunk_ != 0) return;
    const int64_t first = first_time(s);
    const int64_t rows = std::min(chunk_, steps_ - s) * batch_;
    for (int64_t r = 0; r < rows; r += kRowBlock)  // row blocks: x stays in L1 across panels
      panel_gemm(kernels, panels, std::min(kRowBlock, rows - r),
                 x_ + (first * batch_ + r) * input_, input_, data_.data() + r * width_, width_,
                 false, bias_);
  }

  // The projection row of step s, batch row b.
  const T* row(int64_t s, int64_t b) const {
    const int64_t t = order_.time(s, b);
    return data_.data() + ((t - first_time(s - s % chunk_)) * batch_ + b) * width_;
  }

 private:
  static constexpr int64_t kRowBlock = 64;

  // The earliest time of the chunk starting at step s (a whole-sequence chunk starts at 0).
  int64_t first_time(int64_t s) const {
    if (chunk_ == steps_) return 0;
    const int64_t last = std::min(chunk_, steps_ - s) - 1;
    return std::min(order_.block_time(s), order_.block_time(s + last));
  }

  const StepOrder& order_;
  int64_t steps_, batch_, width_, input_;
  const T* x_;
  const T* bias_;
  int64_t chunk_;
  std::vector<T> data_;
};

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
