// The take-over window policy (csrc/cpu/solo_window.hpp): prints "case: value" lines for
// tests/test_embedding.py. Times are made up, in ms.
#include <cstdint>
#include <cstdio>

#include "solo_window.hpp"

namespace {

constexpr int64_t kMs = 1000000;

void show(const char* name, int64_t value) {
  std::printf("%s: %lld\n", name, static_cast<long long>(value));
}

}  // namespace

int main() {
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
