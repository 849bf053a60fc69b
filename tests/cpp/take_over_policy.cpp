// The take-over policy (csrc/cpu/take_over_policy.hpp): prints "case: value" lines for
// tests/test_embedding.py. Times are made up, in us or ms.
#include <cstdint>
#include <cstdio>

#include "take_over_policy.hpp"

namespace {

constexpr int64_t kUs = 1000, kMs = 1000000;

void show(const char* name, int64_t value) {
  std::printf("%s: %lld\n", name, static_cast<long long>(value));
}

void show_windows() {
  fusedrnn::cpu::SoloWindow w;
  show("solo_before_any", w.solo(0));

  w.taken_over(1000 * kMs);  // a lone take-over: the shortest window
  show("lone_window_ms", w.window() / kMs);
  show("solo_inside", w.solo(1009 * kMs));
  show("solo_after", w.solo(1010 * kMs));

  // Take-overs each just after the window ends (the probes fail): the window doubles, to a cap.
  int64_t t = 1000 * kMs;
  for (int i = 0; i < 10; ++i) {
    t += w.window() + kMs;
    w.taken_over(t);
    std::printf("busy_window_ms_%d: %lld\n", i, static_cast<long long>(w.window() / kMs));
  }
  show("solo_in_long_window", w.solo(t + 499 * kMs));

  // A take-over after a quiet spell (more than twice the window) starts over.
  w.taken_over(t + 1001 * kMs);
  show("after_quiet_ms", w.window() / kMs);
}

void show_waits() {
  using fusedrnn::cpu::take_over_wait;
  const int64_t floor = 200 * kUs;
  show("wait_no_patience_us", take_over_wait(0, 500 * kUs, 0, 99) / kUs);
  show("wait_short_step_us", take_over_wait(floor, 15 * kUs, 0, 99) / kUs);
  show("wait_long_step_us", take_over_wait(floor, 300 * kUs, 0, 99) / kUs);
  // A step that was mostly one-off work: the rent counts only the rest; twice the whole step
  // stays the least.
  show("wait_one_off_us", take_over_wait(floor, 610 * kUs, 595 * kUs, 99) / kUs);
  show("wait_one_off_long_rest_us", take_over_wait(floor, 900 * kUs, 600 * kUs, 99) / kUs);
}

}  // namespace

int main() {
  show_windows();
  show_waits();
}
