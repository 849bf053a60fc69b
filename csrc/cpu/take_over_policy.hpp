// When a time loop's thread takes over from a late partner (LoopParts, team_loop.hpp), and
// how long small problems then keep to one thread. Pure policy, apart from the clock readings
// its callers pass in (ns, any steady clock).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace fusedrnn::cpu {

// How long (ns) a thread waits at a barrier for a late partner before it runs the rest of the
// loop alone. floor: the least patience (0: take over at once, for tests); step: this thread's
// time since its last barrier; one_off: the part of it that the steps left will not repeat (a
// chunk of the input projection); steps_left: barriers after this one.
//
// For steps longer than the floor the patience is that of ski rental: waiting costs the
// partner's delay, taking over costs running the rest of the loop alone, about
// steps_left * (step - one_off) more; so wait up to half of that. (With twice the step alone,
// LSTM 100x64x512 took over in 2 of 11 calls and ran the rest of those loops at half speed.)
// Counting the one-off work as every step's made the first barrier of LSTM 100x1x256, whose
// one chunk is the whole sequence's projection (610 us, then 15 us a step), wait up to 30 ms
// for a partner whose core the host had taken. Shorter steps gain little from a second thread
// on a busy host and keep the floor. Always at least twice the whole step: measuring only the
// work before the barrier (the gate pass of the backward loops) made threads take over after
// ordinary GEMM imbalances.
inline int64_t take_over_wait(int64_t floor, int64_t step, int64_t one_off, int64_t steps_left) {
  if (floor == 0) return 0;
  const int64_t each = step - one_off;
  const int64_t rent = each > floor ? steps_left * each / 2 : 0;
  return std::max({floor, 2 * step, rent});
}

// How long small problems run on one thread after a take-over: a busy host takes our second
// core away for long phases, in which a two-thread loop at batch 1 stalls at every step; on a
// quiet host a take-over is a rare stall, after which a fixed half second on one thread put
// many calls at half speed (LSTM 100x1x256, back to back: 2 take-overs sent 227 of 600 calls
// to one thread, 2.5-3.2 ms against 1.3-1.8 on two). So the window starts short and
// doubles with each take-over that follows the last one within twice its window (the
// two-thread probes keep failing: a busy phase), up to half a second; a take-over after a
// quiet spell starts over.
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
