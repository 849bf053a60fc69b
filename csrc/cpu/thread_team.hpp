// Our own threads: one persistent team that runs a whole time loop at once (each thread owning
// a slice of hidden units, one spin barrier per step), and splits the large GEMMs. The BLAS
// itself runs single-threaded inside them, so no two thread pools ever compete for cores.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>

#include "take_over_policy.hpp"

namespace fusedrnn::cpu {

struct Range {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
};

// Part `part` of [0, n) split into `parts` near-equal ranges whose bounds are multiples of
// `align` (except n itself), so that SIMD panels do not straddle two threads.
Range split_range(int64_t n, int parts, int part, int64_t align = 1);

// How a two-thread time loop lets in a worker that comes late (LoopParts): the caller runs
// every part alone until the worker asks to join, then lets it in after one of its barrier
// calls (the at-th), or never, once its loop is done. 0: together from the start.
class LateJoin {
 public:
  static constexpr int64_t kUndecided = -1, kNever = std::numeric_limits<int64_t>::max();

  void reset() {
    asked_.store(false, std::memory_order_relaxed);
    at_.store(kUndecided, std::memory_order_relaxed);
  }
  void ask();  // the worker (after set_join_delay's delay)
  bool asked() const { return asked_.load(std::memory_order_acquire); }
  bool asked_within(int64_t ns) const;  // spins, then yields
  // The first decision stands (the caller's; its work so far is published with it).
  void decide(int64_t at) {
    int64_t undecided = kUndecided;
    at_.compare_exchange_strong(undecided, at, std::memory_order_acq_rel);
  }
  int64_t wait_decision() const;  // spins, then yields, until decided

 private:
  std::atomic<bool> asked_{false};
  std::atomic<int64_t> at_{kUndecided};
};

// How long a time loop's thread waits at a barrier for a late partner (take_over_wait), from
// the clock reading `now` at which it finds the partner late: its step began at `since`.
// Worked out only then, so that a step whose partner is on time reads no clock: on the AVX-512
// machine clock_gettime took 6.5 % of LSTM 1000x1x128 (five readings a step a thread).
struct Patience {
  int64_t floor, since, one_off, steps_left;
  int64_t at(int64_t now) const { return take_over_wait(floor, now - since, one_off, steps_left); }
};

// A sense-reversing barrier that spins briefly, then yields: cheap when every thread has a
// core, and still correct (if slow) when the machine is oversubscribed.
//
// A time loop may instead call wait_or_take_over: on a shared machine a partner that has lost
// its core stalls every later step, so a thread that has waited longer than its patience
// claims the rest of the loop. When the late threads arrive, the claimer gets Turn::solo
// (run every thread's part of the remaining steps, alone, without barriers) and the others
// Turn::leave (stop at once: the claimer finishes their part). Results do not change, since
// each part is the same computation whichever thread runs it.
class SpinBarrier {
 public:
  enum class Turn { together, solo, leave };

  explicit SpinBarrier(int threads = 1) : threads_(threads) {}
  void reset(int threads);  // between jobs only
  void wait();
  Turn wait_or_take_over(const Patience& patience);

  LateJoin join;  // the job's, reset with the barrier

 private:
  bool arrive_last(bool* claimed);  // true for the last thread to arrive

  int threads_;
  std::atomic<int> arrived_{0};
  std::atomic<int> phase_{0};  // phase * 4 + claim bits (thread_team.cpp)
  std::atomic<int> sleepers_{0};
};

// The least patience of wait_or_take_over in the time loops (LoopParts), in nanoseconds;
// set_take_over_patience(n < 0) restores the default. For tests: 0 makes every late partner
// hand over its loop, so that the take-over paths run.
int64_t take_over_patience();
void set_take_over_patience(int64_t ns);

// Whether a time loop was taken over recently: the sign of a machine whose cores are not
// reliably ours (a busy host), where small problems had better use one thread. "Recently":
// 10 ms after a lone take-over, up to half a second when they keep coming (SoloWindow).
bool taken_over_recently();

// Whether the team's workers are still looking for work: they do for a while after each job,
// then sleep, and waking one takes long on a virtual machine (see TeamPlan). wake_team() wakes
// them without a job.
bool team_awake();
void wake_team();

// Whether the team's sleeping workers came within about 50 us when last woken: then waking them
// for a call costs it little.
bool team_wakes_fast();

// Wakes the team's workers when it goes (a moved-from one does not), if armed: after a call
// that ran alone because they were asleep, so that the next call finds them awake.
class WakeTeamAfter {
 public:
  explicit WakeTeamAfter(bool armed = false) : armed_(armed) {}
  WakeTeamAfter(WakeTeamAfter&& other) noexcept : armed_(std::exchange(other.armed_, false)) {}
  WakeTeamAfter& operator=(WakeTeamAfter&& other) noexcept {
    std::swap(armed_, other.armed_);
    return *this;
  }
  ~WakeTeamAfter() {
    if (!armed_) return;
    try {
      wake_team();
    } catch (...) {  // a mutex that cannot be locked: the next call wakes them itself
    }
  }

 private:
  bool armed_;
};

// Runs job(tid, barrier) on exactly n threads, the caller being tid 0, and returns when all
// are done; `barrier` synchronises those n. Denormals are flushed to zero on every thread for
// the job's duration. One job at a time: other callers (other Python threads) wait their turn,
// so a call's thread count, and with it its results, never depend on what else is running.
// The job must not throw. elastic: a worker that has not started the job by the time the
// caller's part returns skips it, which is right only for jobs whose caller then has done all
// the work (time loops with LateJoin; jobs whose parts any thread may claim).
void parallel_run(int n, const std::function<void(int tid, SpinBarrier& barrier)>& job,
                  bool elastic = false);

// For tests: how long (ns) a worker waits before it asks to join a two-thread time loop, so
// that it joins late, mid-sequence, or before it claims a part of a loop of batch rows, so
// that the caller runs more of them (0: at once); and that wait.
void set_join_delay(int64_t ns);
void wait_join_delay();

// For tests: how long (ns) a worker waits after each part it claims in a two-thread time loop
// (PartClaims), so that the caller claims more of each step's parts (0: none); and that wait.
void set_claim_delay(int64_t ns);
void wait_claim_delay();

// The team size (default: the number of cores the process may use); kernels use
// min(team size, what their problem can split into) threads.
int team_size();
void set_team_size(int n);

// The cores the process may use, as first read: fixed for the process, so that work split by
// it (parallel_gemm's blocks) gives the same results whatever the team size.
int machine_cores();

}  // namespace fusedrnn::cpu
