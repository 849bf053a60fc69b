// The arithmetic peak of this machine as our kernels see it: every team thread runs the step
// kernels' register-only FMA loop, and the rates add up. bench/compare.py prints it next to
// the sgemm rate, so that a GEMM's or a peer's speed can be read as a fraction of the peak.
#include <algorithm>
#include <chrono>
#include <vector>

#include "fusedrnn/fusedrnn.hpp"
#include "step_kernels.hpp"
#include "thread_team.hpp"

namespace fusedrnn {

double fma_peak_flops(double seconds, int threads) {
  const int n = threads > 0 ? threads : cpu::team_size();
  const auto& kernels = cpu::step_kernels<float>();
  std::vector<double> best(n, 0.0);
  std::vector<float> sink(n);
  cpu::parallel_run(n, [&](int tid, cpu::SpinBarrier& barrier) {
    using clock = std::chrono::steady_clock;
    barrier.wait();  // start together: the cores share the machine's power and clock budget
    const auto end = clock::now() + std::chrono::duration<double>(seconds);
    // Bursts of ~0.25 ms; the best burst is the peak (a descheduled burst only lowers its own).
    constexpr int64_t kIterations = 1 << 17;
    do {
      const auto t0 = clock::now();
      const int64_t flops = kernels.fma_burst(kIterations, 0.999999f, 1e-6f, &sink[tid]);
      const double dt = std::chrono::duration<double>(clock::now() - t0).count();
      best[tid] = std::max(best[tid], flops / dt);
    } while (clock::now() < end);
  });
  double total = 0;
  for (double r : best) total += r;
  return total;
}

}  // namespace fusedrnn
