#include "thread_team.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FUSEDRNN_PAUSE() _mm_pause()
#else
#define FUSEDRNN_PAUSE() ((void)0)
#endif

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace fusedrnn::cpu {

Range split_range(int64_t n, int parts, int part, int64_t align) {
  const int64_t units = (n + align - 1) / align;  // whole aligned blocks, the last may be short
  const int64_t base = units / parts, extra = units % parts;
  const int64_t first = part * base + std::min<int64_t>(part, extra);
  const int64_t count = base + (part < extra ? 1 : 0);
  return {std::min(n, first * align), std::min(n, (first + count) * align)};
}

void SpinBarrier::wait() {
  const int phase = phase_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
    arrived_.store(0, std::memory_order_relaxed);
    phase_.store(phase + 1, std::memory_order_release);
    return;
  }
  for (int spins = 0; phase_.load(std::memory_order_acquire) == phase; ++spins) {
    if (spins < 4096) FUSEDRNN_PAUSE();
    else std::this_thread::yield();
  }
}

namespace {

// Flush-to-zero and denormals-are-zero: a denormal gate stalls the FPU 10-100x.
class DenormalsOff {
 public:
#if defined(__SSE__) || defined(__x86_64__)
  DenormalsOff() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }
  ~DenormalsOff() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
};

int default_size() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

class Team {
 public:
  void run(int n, const std::function<void(int, SpinBarrier&)>& job) {
    if (n <= 1) {  // the caller alone: no need to wait for the team
      DenormalsOff guard;
      SpinBarrier alone(1);
      job(0, alone);
      return;
    }
    std::lock_guard<std::mutex> turn(busy_);  // one job at a time
    grow(n - 1);
    barrier_.reset(n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      threads_ = n;
      pending_ = n - 1;
      ++generation_;
    }
    wake_.notify_all();
    {
      DenormalsOff guard;
      job(0, barrier_);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
  }

  std::atomic<int> size_{default_size()};

 private:
  void grow(int workers) {
    while (static_cast<int>(workers_.size()) < workers) {
      const int tid = static_cast<int>(workers_.size()) + 1;
      const uint64_t now = generation_;  // a new worker waits for the next job, not a past one
      workers_.emplace_back([this, tid, now] { work(tid, now); });
      workers_.back().detach();  // the team lives as long as the process
    }
  }

  void work(int tid, uint64_t seen) {
    for (;;) {
      const std::function<void(int, SpinBarrier&)>* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (tid >= threads_) continue;
        job = job_;
      }
      {
        DenormalsOff guard;
        (*job)(tid, barrier_);
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex busy_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  SpinBarrier barrier_;
  const std::function<void(int, SpinBarrier&)>* job_ = nullptr;
  int threads_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
};

// Never destroyed: its detached workers may outlive static destruction at exit. A child of
// fork() inherits none of the workers (only the forking thread survives), so it starts a
// fresh team; the parent's stays behind, unused.
std::atomic<Team*> g_team{nullptr};

void fresh_team_after_fork() { g_team.store(new Team); }

Team& team() {
  static const bool init = [] {
    g_team.store(new Team);
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork(nullptr, nullptr, fresh_team_after_fork);
#endif
    return true;
  }();
  (void)init;
  return *g_team.load();
}

}  // namespace

void parallel_run(int n, const std::function<void(int, SpinBarrier&)>& job) { team().run(n, job); }

int team_size() { return team().size_.load(); }

void set_team_size(int n) { team().size_.store(n > 0 ? n : default_size()); }

}  // namespace fusedrnn::cpu
