// leave_cpu (csrc/cpu/cpu_placement.hpp): prints "case: value" lines for
// tests/test_embedding.py.
#include <cstdio>

#include "cpu_placement.hpp"

namespace {

void show(const char* name, long value) { std::printf("%s: %ld\n", name, value); }

}  // namespace

int main() {
  using fusedrnn::cpu::current_cpu;
  using fusedrnn::cpu::leave_cpu;
#if defined(__linux__)
  cpu_set_t all, after;
  sched_getaffinity(0, sizeof all, &all);
  show("cpus", CPU_COUNT(&all));

  // Off the CPU it runs on (retried: the scheduler may move it between the two readings), to
  // another that its mask allows; the mask as it was.
  int here = -1, to = -1;
  for (int tries = 0; tries < 100 && to < 0; ++tries) to = leave_cpu(here = current_cpu());
  sched_getaffinity(0, sizeof after, &after);
  show("moved_elsewhere", to >= 0 && to != here && CPU_ISSET(to, &all));
  show("mask_kept", CPU_EQUAL(&all, &after));

  // Allowed one CPU only: nowhere to go, the mask as it was; and asked to leave another CPU
  // (it cannot be there), no move either.
  const int pinned = current_cpu();
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(pinned, &one);
  sched_setaffinity(0, sizeof one, &one);
  show("alone_no_move", leave_cpu(pinned) == -1);
  show("elsewhere_no_move", leave_cpu(pinned == 0 ? 1 : 0) == -1 && current_cpu() == pinned);
  sched_getaffinity(0, sizeof after, &after);
  show("mask_kept_alone", CPU_EQUAL(&one, &after));
#else
  show("cpus", 0);
#endif
}
