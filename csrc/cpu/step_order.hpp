// The order in which the time loop visits (time, batch) rows, forward or reverse, with or
// without per-sequence lengths.
#pragma once

#include <cstdint>

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

 private:
  int64_t steps_;
  const int64_t* lengths_;
  bool reverse_;
};

// A [B, N] row view of a time-major [T, B, N] array at step s, row b.
template <typename T>
T* row_at(T* base, const StepOrder& order, int64_t s, int64_t b, int64_t batch, int64_t n) {
  return base + (order.time(s, b) * batch + b) * n;
}

}  // namespace fusedrnn::cpu
