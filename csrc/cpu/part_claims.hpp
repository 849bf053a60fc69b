// Which parts (ranges of hidden units) the two threads of a time loop claim in each step
// (LoopParts, team_loop.hpp), and when they pack the parts' weights (TeamPlan).
#pragma once

#include <atomic>
#include <cstdint>

namespace fusedrnn::cpu {

// The caller takes a step's parts from the front, its worker from the back, so that while the
// two keep pace each runs the same parts every step (their weights stay in its cache), and
// when one falls behind the other takes more. On this virtual machine the host often slows
// one core for a while: LSTM 100x16x256, each thread's own work per call (instrumented build,
// one part a thread) took 10.5-11 ms on one core and 13.5-14 on the other, where earlier
// calls had been equal. One word per step parity: lo << 32 | hi, the parts [lo, hi) that no
// thread has claimed yet.
class PartClaims {
 public:
  explicit PartClaims(int parts) : full_(parts) {
    for (auto& w : words_) w.store(full_, std::memory_order_relaxed);
  }

  // Claims a part of step `step`, the first (front) or the last of those left; -1: none left.
  int claim(int64_t step, bool front) {
    std::atomic<int64_t>& word = words_[step & 1];
    int64_t w = word.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t lo = w >> 32, hi = w & 0xffffffff;
      if (lo >= hi) return -1;
      const int64_t next = front ? ((lo + 1) << 32) | hi : (lo << 32) | (hi - 1);
      if (word.compare_exchange_weak(w, next, std::memory_order_relaxed))
        return static_cast<int>(front ? lo : hi - 1);
    }
  }

  // Every part of `step` free again, for step + 2 (the same word): by the caller, after every
  // thread has arrived at the barrier that ends the step (no claim of it is left) and before
  // it arrives at the next one (which comes before any claim of step + 2).
  void refill(int64_t step) { words_[step & 1].store(full_, std::memory_order_relaxed); }

 private:
  int64_t full_;
  std::atomic<int64_t> words_[2];
};

}  // namespace fusedrnn::cpu
