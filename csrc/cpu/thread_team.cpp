#include "thread_team.hpp"

#include <algorithm>
#include <chrono>
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
#include <climits>

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "cpu_placement.hpp"
#include "fork_fresh.hpp"
#include "take_over_policy.hpp"

namespace fusedrnn::cpu {

Range split_range(int64_t n, int parts, int part, int64_t align) {
  const int64_t units = (n + align - 1) / align;  // whole aligned blocks, the last may be short
  const int64_t base = units / parts, extra = units % parts;
  const int64_t first = part * base + std::min<int64_t>(part, extra);
  const int64_t count = base + (part < extra ? 1 : 0);
  return {std::min(n, first * align), std::min(n, (first + count) * align)};
}

namespace {

// Pauses (~30 ns each on the 2-core EPYC: ~120 us) before a waiting thread starts yielding.
constexpr int kSpins = 4096;

#if defined(__linux__)
void futex_wait(std::atomic<int>* word, int expected) {
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void futex_wake_all(std::atomic<int>* word) {
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}
#else
void futex_wait(std::atomic<int>*, int) { std::this_thread::yield(); }
void futex_wake_all(std::atomic<int>*) {}
#endif

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// How long a worker keeps looking for the next job before it sleeps, and the caller for the
// workers' end of a job. A call runs several jobs a few microseconds apart (packing each
// layout, then the time loop), and a program calls again and again; waking a sleeping thread
// on this virtual machine took long enough that the time loop's first barrier often ran out of
// patience, so that a loop at batch 1 went solo, and the calls after it ran on one thread.
constexpr int64_t kIdleSpinNs = 2000000;

// A wake-up this quick lets a sleeping worker join a loop from its start: the caller looks for
// it that long (LoopParts). On the AVX-512 machine a futex wake-up after 0.3 s idle took 20-28
// us; on the AVX2 machine's host it often took milliseconds.
constexpr int64_t kFastWakeNs = 50000;

// Until done() or `ns` have passed: pauses, then (after ~50 us) yields, so that an
// oversubscribed machine still gets on. True if done() came true.
template <typename Done>
bool spin_for(int64_t ns, Done done) {
  const int64_t deadline = now_ns() + ns;
  for (int spins = 0;; ++spins) {
    if (done()) return true;
    if (spins % 64 == 63 && now_ns() > deadline) return false;
    if (spins < 2048) FUSEDRNN_PAUSE();
    else std::this_thread::yield();
  }
}

template <typename Done>
bool spin_until(Done done) {
  return spin_for(kIdleSpinNs, done);
}

std::atomic<int64_t> g_join_delay{0}, g_claim_delay{0};

SoloWindow g_solo;

}  // namespace

// phase_ holds the phase times 4, plus 1 once a waiting thread has claimed the loop in this
// phase, plus 2 when the previous phase ended claimed. The second bit tells a released waiter
// whether the phase it waited for was claimed, even if its partner has meanwhile claimed the
// next one (which sets the first bit only).
namespace {
constexpr int phase_of(int word) { return word >> 2; }
constexpr bool claimed_now(int word) { return word & 1; }
constexpr bool claimed_before(int word) { return word & 2; }
}  // namespace

bool SpinBarrier::arrive_last(bool* claimed) {
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 != threads_) return false;
  arrived_.store(0, std::memory_order_relaxed);
  int word = phase_.load(std::memory_order_relaxed);
  int next;
  do {  // a waiter may claim concurrently: its bit moves into the next phase's "before" bit
    next = ((phase_of(word) + 1) << 2) | (claimed_now(word) ? 2 : 0);
  } while (!phase_.compare_exchange_weak(word, next, std::memory_order_seq_cst));
  *claimed = claimed_now(word);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake_all(&phase_);
  return true;
}

void SpinBarrier::wait() {
  const int word = phase_.load(std::memory_order_acquire);
  bool claimed;
  if (arrive_last(&claimed)) return;
  for (int spins = 0; phase_of(phase_.load(std::memory_order_acquire)) == phase_of(word);
       ++spins) {
    if (spins < kSpins) FUSEDRNN_PAUSE();
    else std::this_thread::yield();
  }
}

SpinBarrier::Turn SpinBarrier::wait_or_take_over(const Patience& patience) {
  const int word = phase_.load(std::memory_order_acquire);
  bool claimed;
  if (arrive_last(&claimed)) return claimed ? Turn::leave : Turn::together;
  int64_t deadline = -1;  // set at the first look at the clock, 64 pauses in
  for (int spins = 0;; ++spins) {
    const int w = phase_.load(std::memory_order_acquire);
    if (phase_of(w) != phase_of(word)) return claimed_before(w) ? Turn::leave : Turn::together;
    FUSEDRNN_PAUSE();
    if (spins % 64 != 63 || claimed_now(w)) continue;
    const int64_t now = now_ns();
    if (deadline < 0) deadline = now + patience.at(now);
    if (now >= deadline) {
      int expected = w;
      if (phase_.compare_exchange_strong(expected, w | 1, std::memory_order_seq_cst)) {
        g_solo.taken_over(now);
        break;
      }
    }
  }
  // Claimed: wait until the late threads have finished this step (they then leave). Spin
  // first: a sleeping claimer's wake-up is on the loop's critical path, and on this virtual
  // machine it took long enough that in calls after an idle pause a take-over often cost more
  // than it saved (LSTM 100x1x256 after 0.3 s pauses, medians with take-overs against without,
  // in one process: 6.7 against 4.1-4.4 ms; spinning, 6.2 against 4.8 and 7.8 against 6.8).
  // Then sleep: the sleeper's core goes idle, so the scheduler can move a partner that this
  // machine's own load descheduled onto it.
  auto released = [&] {
    return phase_of(phase_.load(std::memory_order_acquire)) != phase_of(word);
  };
  if (spin_until(released)) return Turn::solo;
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  for (int w; phase_of(w = phase_.load(std::memory_order_seq_cst)) == phase_of(word);)
    futex_wait(&phase_, w);
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  return Turn::solo;
}

void LateJoin::ask() {
  wait_join_delay();
  asked_.store(true, std::memory_order_release);
}

bool LateJoin::asked_within(int64_t ns) const {
  return spin_for(ns, [&] { return asked(); });
}

int64_t LateJoin::wait_decision() const {
  auto decided = [&] { return at_.load(std::memory_order_acquire) != kUndecided; };
  while (!spin_for(kIdleSpinNs, decided)) {
  }
  return at_.load(std::memory_order_acquire);
}

void SpinBarrier::reset(int threads) {
  join.reset();
  threads_ = threads;
  arrived_.store(0, std::memory_order_relaxed);
  phase_.store(phase_of(phase_.load(std::memory_order_relaxed)) << 2, std::memory_order_relaxed);
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
  void run(int n, const std::function<void(int, SpinBarrier&)>& job, bool elastic) {
    if (n <= 1) {  // the caller alone: no need to wait for the team
      DenormalsOff guard;
      SpinBarrier alone(1);
      job(0, alone);
      return;
    }
    std::lock_guard<std::mutex> turn(busy_);  // one job at a time
    Active active{active_};
    grow(n - 1);
    barrier_.reset(n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      threads_ = n;
      taken_ = 0;
      withdrawn_ = false;
      pending_.store(n - 1, std::memory_order_relaxed);
      signal();
    }
    wake_.notify_all();
    {
      DenormalsOff guard;
      job(0, barrier_);
    }
    if (elastic) withdraw();
    if (spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) return;
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }

  // Whether the workers are still looking for work, as they do for kIdleSpinNs after a job or
  // a wake-up (a quarter of it kept as margin); true before the first job, which starts them.
  bool awake() const {
    return started_.load(std::memory_order_relaxed) == 0 ||
           now_ns() - active_.load(std::memory_order_relaxed) < kIdleSpinNs * 3 / 4;
  }

  // Whether a sleeping worker came quickly when last woken (within kFastWakeNs of the signal):
  // then a small loop need not run alone while the workers sleep (TeamPlan).
  bool wakes_fast() const {
    const int64_t ns = wake_ns_.load(std::memory_order_relaxed);
    return ns >= 0 && ns < kFastWakeNs;
  }

  // Wakes sleeping workers without a job, so that they look for the next one.
  void wake() {
    std::unique_lock<std::mutex> turn(busy_, std::try_to_lock);
    if (!turn.owns_lock() || started_.load(std::memory_order_relaxed) == 0) return;
    Active active{active_};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      threads_ = 0;  // a job for none of them
      signal();
    }
    wake_.notify_all();
  }

  std::atomic<int> size_{default_size()};

 private:
  // Stamps the time the workers were last given something to do, when it goes.
  struct Active {
    std::atomic<int64_t>& at;
    ~Active() { at.store(now_ns(), std::memory_order_relaxed); }
  };

  // Workers that have not taken an elastic job by now skip it: the caller has done their part.
  // A worker that the host has descheduled would otherwise hold the call until it runs again
  // (milliseconds on this virtual machine).
  void withdraw() {
    std::lock_guard<std::mutex> lock(mutex_);
    withdrawn_ = true;
    pending_.fetch_sub(threads_ - 1 - taken_, std::memory_order_acq_rel);
  }

  void grow(int workers) {
    while (static_cast<int>(workers_.size()) < workers) {
      const int tid = static_cast<int>(workers_.size()) + 1;
      // A new worker waits for the next job, not a past one.
      const uint64_t now = generation_.load(std::memory_order_relaxed);
      workers_.emplace_back([this, tid, now] { work(tid, now); });
      workers_.back().detach();  // the team lives as long as the process
      started_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    }
  }

  // A new job or wake-up for the workers (under mutex_).
  void signal() {
    caller_cpu_ = current_cpu();
    signalled_at_ = now_ns();
    generation_.fetch_add(1, std::memory_order_release);
  }

  void work(int tid, uint64_t seen) {
    for (;;) {
      const std::function<void(int, SpinBarrier&)>* job = nullptr;
      const bool slept =
          !spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      int caller_cpu;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        if (slept) wake_ns_.store(now_ns() - signalled_at_, std::memory_order_relaxed);
        caller_cpu = caller_cpu_;
      }
      // Before taking the job: a worker that the move leaves waiting for its new core has not
      // taken it, so an elastic job's caller does not wait for it (withdraw).
      leave_cpu(caller_cpu);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen = generation_.load(std::memory_order_relaxed);
        if (tid < threads_ && !withdrawn_) {
          job = job_;
          ++taken_;
        }
      }
      if (!job) continue;
      {
        DenormalsOff guard;
        (*job)(tid, barrier_);
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);  // the caller may be about to sleep
        done_.notify_one();
      }
    }
  }

  std::mutex busy_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  SpinBarrier barrier_;
  const std::function<void(int, SpinBarrier&)>* job_ = nullptr;
  int threads_ = 0;
  int taken_ = 0;           // workers that have taken the current job (under mutex_)
  bool withdrawn_ = false;  // the current job takes no more workers (under mutex_)
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> started_{0};        // workers started
  std::atomic<int64_t> active_{0};     // when the last job or wake-up ended (now_ns)
  int caller_cpu_ = -1;                 // where the last signal() came from (under mutex_)
  int64_t signalled_at_ = 0;            // when (now_ns, under mutex_)
  std::atomic<int64_t> wake_ns_{-1};    // a sleeping worker's last wake-up took (-1: none yet)
};

// Its detached workers may outlive static destruction at exit; a child of fork() inherits none
// of them, so it starts a fresh team.
Team& team() { return fork_fresh<Team>(); }

}  // namespace

namespace {
// A descheduled partner costs a time slice (milliseconds); an ordinary imbalance of the parts
// stays far below 200 us.
constexpr int64_t kPatienceNs = 200000;
std::atomic<int64_t> g_patience{kPatienceNs};
}  // namespace

bool taken_over_recently() {
  return g_solo.solo(now_ns());
}

bool team_awake() { return team().awake(); }

bool team_wakes_fast() { return team().wakes_fast(); }

void wake_team() { team().wake(); }

int64_t take_over_patience() { return g_patience.load(std::memory_order_relaxed); }

void set_take_over_patience(int64_t ns) { g_patience.store(ns < 0 ? kPatienceNs : ns); }

void parallel_run(int n, const std::function<void(int, SpinBarrier&)>& job, bool elastic) {
  team().run(n, job, elastic);
}

void set_join_delay(int64_t ns) { g_join_delay.store(ns > 0 ? ns : 0); }

void wait_join_delay() {
  const int64_t delay = g_join_delay.load(std::memory_order_relaxed);
  if (delay > 0) spin_for(delay, [] { return false; });
}

void set_claim_delay(int64_t ns) { g_claim_delay.store(ns > 0 ? ns : 0); }

void wait_claim_delay() {
  const int64_t delay = g_claim_delay.load(std::memory_order_relaxed);
  if (delay > 0) spin_for(delay, [] { return false; });
}

int team_size() { return team().size_.load(); }

int machine_cores() {
  static const int cores = default_size();
  return cores;
}

void set_team_size(int n) { team().size_.store(n > 0 ? n : default_size()); }

}  // namespace fusedrnn::cpu
