// The order in which the time loop visits (time, batch) rows, as the CPU's StepOrder
// (csrc/cpu/step_order.hpp), on the device: step s of batch row b is time t(s, b) = s forward;
// len_b - 1 - s in reverse, so each sequence starts at its own last valid step. Rows with
// s >= len_b are padding and map to t = s, which keeps the map a bijection of [0, T) per row:
// every (t, b) of y, of the saved block and of the gate gradients is written exactly once.
#pragma once

#include <cstdint>

namespace fusedrnn::cuda {

struct StepOrder {
  int64_t steps;
  const int64_t* lengths;  // device [B], or null: every sequence has all T steps
  bool reverse;

  // True when all rows of a step share one time index (then a step is one [B, N] block).
  __host__ __device__ bool steps_are_blocks() const { return !(reverse && lengths); }
  __host__ __device__ int64_t block_time(int64_t s) const { return reverse ? steps - 1 - s : s; }

  __device__ int64_t length(int64_t b) const { return lengths ? lengths[b] : steps; }
  __device__ bool valid(int64_t s, int64_t b) const { return s < length(b); }
  __device__ int64_t time(int64_t s, int64_t b) const {
    const int64_t len = length(b);
    return (reverse && s < len) ? len - 1 - s : s;
  }
  // Offset of row b at step s in a time-major [T, B, n] array.
  __device__ int64_t row(int64_t s, int64_t b, int64_t batch, int64_t n) const {
    return (time(s, b) * batch + b) * n;
  }
};

}  // namespace fusedrnn::cuda
