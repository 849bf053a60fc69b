// Where a thread runs: for the thread team's workers, which the guest scheduler may wake on the
// very CPU of the thread that woke them (thread_team.cpp).
#pragma once

#if defined(__linux__)
#include <sched.h>
#endif

namespace fusedrnn::cpu {

// The CPU the calling thread runs on (-1: unknown).
inline int current_cpu() {
#if defined(__linux__)
  return sched_getcpu();
#else
  return -1;
#endif
}

// Moves the calling thread off `cpu` if it runs there, to another CPU it may use. The guest
// scheduler wakes a worker on the CPU of the thread that woke it (which then runs the loop
// itself) when the other core has been idle: on the 2-core AVX-512 machine that was most
// calls after a pause, and the two then took turns on one core until the loop was taken over.
// The full mask is restored at once: a running thread stays where it is. Returns the CPU it
// moved to, or -1 where it did not move (elsewhere already, or no other CPU allowed).
inline int leave_cpu(int cpu) {
#if defined(__linux__)
  if (cpu < 0 || sched_getcpu() != cpu) return -1;
  cpu_set_t all, others;
  if (sched_getaffinity(0, sizeof all, &all) != 0) return -1;
  others = all;
  CPU_CLR(cpu, &others);
  if (CPU_COUNT(&others) == 0 || sched_setaffinity(0, sizeof others, &others) != 0) return -1;
  const int moved_to = sched_getcpu();  // not `cpu`: the mask leaves it out
  sched_setaffinity(0, sizeof all, &all);
  return moved_to;
#else
  (void)cpu;
  return -1;
#endif
}

}  // namespace fusedrnn::cpu
