// This machine's ceilings as our kernels see them, every team thread running a step kernel's
// probe and the rates adding up: the arithmetic peak (bench/compare.py prints it next to the
// sgemm rate, so that a GEMM's or a peer's speed can be read as a fraction of it) and the rate
// at which a step can stream its weights (bench/ceiling.py builds the fastest possible layer
// from both).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "fusedrnn/fusedrnn.hpp"
#include "step_kernels.hpp"
#include "thread_team.hpp"

namespace fusedrnn {
namespace {

// Runs burst(tid) again and again on each of n threads for about `seconds`, all starting
// together (the cores share the power and clock budget, the L3 and the memory), after
// prepare(tid) on the same thread; returns the sum of each thread's best rate (what a burst
// returns, a second): a descheduled burst only lowers its own.
template <typename Prepare, typename Burst>
double summed_best_rates(int n, double seconds, Prepare prepare, Burst burst) {
  std::vector<double> best(n, 0.0);
  cpu::parallel_run(n, [&](int tid, cpu::SpinBarrier& barrier) {
    using clock = std::chrono::steady_clock;
    prepare(tid);
    barrier.wait();
    const auto end = clock::now() + std::chrono::duration<double>(seconds);
    do {
      const auto t0 = clock::now();
      const double amount = double(burst(tid));
      const double dt = std::chrono::duration<double>(clock::now() - t0).count();
      best[tid] = std::max(best[tid], amount / dt);
    } while (clock::now() < end);
  });
  double total = 0;
  for (double r : best) total += r;
  return total;
}

}  // namespace

double fma_peak_flops(double seconds, int threads) {
  const int n = threads > 0 ? threads : cpu::team_size();
  const auto& kernels = cpu::step_kernels<float>();
  std::vector<float> sink(n);
  // Bursts of ~0.25 ms.
  constexpr int64_t kIterations = 1 << 17;
  return summed_best_rates(n, seconds, [](int) {}, [&](int tid) {
    return kernels.fma_burst(kIterations, 0.999999f, 1e-6f, &sink[tid]);
  });
}

double stream_read_rate(int64_t bytes, double seconds, int threads) {
  if (bytes <= 0) throw std::invalid_argument("stream_read_rate: bytes must be positive");
  const int n = threads > 0 ? threads : cpu::team_size();
  const auto& kernels = cpu::step_kernels<float>();
  // Each thread's share, whole rows of four panels, at least one such row.
  const int64_t row = 4 * int64_t(kernels.panel_lanes);
  const int64_t count =
      std::max<int64_t>(1, (bytes / n / int64_t(sizeof(float)) + row - 1) / row) * row;
  // Bursts of about 64 MiB read (a quarter of a millisecond from L2); a share larger than that
  // is read once a burst.
  const int64_t passes =
      std::max<int64_t>(1, (int64_t(64) << 20) / (count * int64_t(sizeof(float))));
  // 64-byte aligned, as the packed panels are.
  using Buffer = std::unique_ptr<float, decltype(&std::free)>;
  std::vector<Buffer> data;
  for (int t = 0; t < n; ++t) {
    data.emplace_back(static_cast<float*>(std::aligned_alloc(64, size_t(count) * sizeof(float))),
                      &std::free);
    if (!data.back()) throw std::bad_alloc();
  }
  std::vector<float> sink(n);
  return summed_best_rates(
      n, seconds,
      [&](int tid) {  // each thread writes its own share first: its pages, its caches
        std::fill(data[tid].get(), data[tid].get() + count, 1.0f / float(tid + 2));
      },
      [&](int tid) {
        return kernels.stream_burst(data[tid].get(), count, passes, 0.999f, &sink[tid]);
      });
}

}  // namespace fusedrnn
