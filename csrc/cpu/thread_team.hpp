// Our own threads: one persistent team that runs a whole time loop at once (each thread owning
// a slice of hidden units, one spin barrier per step), and splits the large GEMMs. The BLAS
// itself runs single-threaded inside them, so no two thread pools ever compete for cores.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace fusedrnn::cpu {

struct Range {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
};

// Part `part` of [0, n) split into `parts` near-equal ranges whose bounds are multiples of
// `align` (except n itself), so that SIMD panels do not straddle two threads.
Range split_range(int64_t n, int parts, int part, int64_t align = 1);

// A sense-reversing barrier that spins briefly, then yields: cheap when every thread has a
// core, and still correct (if slow) when the machine is oversubscribed.
class SpinBarrier {
 public:
  explicit SpinBarrier(int threads = 1) : threads_(threads) {}
  void reset(int threads) { threads_ = threads; }
  void wait();

 private:
  int threads_;
  std::atomic<int> arrived_{0};
  std::atomic<int> phase_{0};
};

// Runs job(tid, barrier) on exactly n threads, the caller being tid 0, and returns when all
// are done; `barrier` synchronises those n. Denormals are flushed to zero on every thread for
// the job's duration. One job at a time: other callers (other Python threads) wait their turn,
// so a call's thread count, and with it its results, never depend on what else is running.
// The job must not throw.
void parallel_run(int n, const std::function<void(int tid, SpinBarrier& barrier)>& job);

// The team size (default: the number of cores the process may use); kernels use
// min(team size, what their problem can split into) threads.
int team_size();
void set_team_size(int n);

}  // namespace fusedrnn::cpu
