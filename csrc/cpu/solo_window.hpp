// How long small problems run on one thread after a time loop was taken over (a partner late
// at a barrier: thread_team.hpp). A busy host takes our second core away for long phases, in
// which a two-thread loop at batch 1 stalls at every step; on a quiet host a take-over is a
// rare stall, after which a fixed half second on one thread made the next ~180 calls of LSTM
// 100x1x256 about twice as slow. So the window starts short and doubles with each take-over
// that follows the last one within twice its window (the two-thread probes keep failing: a
// busy phase), up to half a second; a take-over after a quiet spell starts over.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace fusedrnn::cpu {

class SoloWindow {
 public:
  static constexpr int64_t kShortestNs = 10000000, kLongestNs = 500000000;

  // A loop was taken over at `now` (ns, any steady clock).
  void taken_over(int64_t now) {
    const int64_t window = window_.load(std::memory_order_relaxed);
    const bool soon = now - last_.load(std::memory_order_relaxed) < 2 * window;
    window_.store(soon ? std::min(2 * window, kLongestNs) : kShortestNs,
                  std::memory_order_relaxed);
    last_.store(now, std::memory_order_relaxed);
  }

  // Whether small problems should run on one thread at `now`.
  bool solo(int64_t now) const {
    return now - last_.load(std::memory_order_relaxed) < window_.load(std::memory_order_relaxed);
  }

  int64_t window() const { return window_.load(std::memory_order_relaxed); }

 private:
  // Relaxed: concurrent take-overs may race, which only blurs a heuristic.
  std::atomic<int64_t> last_{-2 * kLongestNs}, window_{kShortestNs};
};

}  // namespace fusedrnn::cpu
