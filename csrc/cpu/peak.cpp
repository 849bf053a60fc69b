// This machine's ceilings as our kernels see them, every team thread running a step kernel's
// probe and the rates adding up: the arithmetic peak (bench/compare.py prints it next to the
// sgemm rate, so that a GEMM's or a peer's speed can be read as a fraction of it) and the rate
// at which a step can stream its weights (bench/ceiling.py builds the fastest possible layer
// from both).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
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

double stream_read_rate(int64_t bytes, double seconds, int threads) {
  if (bytes <= 0) throw std::invalid_argument("stream_read_rate: bytes must be positive");
  const int n = threads > 0 ? threads : cpu::team_size();
  const auto& kernels = cpu::step_kernels<float>();
  // Each thread's share, whole rows of four panels, at least one such row.
  const int64_t row = 4 * int64_t(kernels.panel_lanes);
  const int64_t count = std::max<int64_t>(1, (bytes / n / int64_t(sizeof(float)) + row - 1) / row) * row;
  // Bursts of about 64 MiB read (a quarter of a millisecond from L2); a buffer larger than that
  // is read once a burst.
  const int64_t passes = std::max<int64_t>(1, (int64_t(64) << 20) / (count * int64_t(sizeof(float))));
  std::vector<double> best(n, 0.0);
  std::vector<float> sink(n);
  cpu::parallel_run(n, [&](int tid, cpu::SpinBarrier& barrier) {
    using clock = std::chrono::steady_clock;
    // Each thread's own pages, written by that thread (first touch), 64-byte aligned as the
    // packed panels are.
    std::unique_ptr<float, decltype(&std::free)> data(
        static_cast<float*>(std::aligned_alloc(64, size_t(count) * sizeof(float))), &std::free);
    if (data) std::fill(data.get(), data.get() + count, 1.0f / float(tid + 2));
    barrier.wait();  // read together: the cores share the L3 and the memory
    if (!data) return;
    const auto end = clock::now() + std::chrono::duration<double>(seconds);
    do {
      const auto t0 = clock::now();
      const int64_t read = kernels.stream_burst(data.get(), count, passes, 0.999f, &sink[tid]);
      const double dt = std::chrono::duration<double>(clock::now() - t0).count();
      best[tid] = std::max(best[tid], read / dt);
    } while (clock::now() < end);
  });
  double total = 0;
  for (double r : best) total += r;
  return total;
}

}  // namespace fusedrnn
