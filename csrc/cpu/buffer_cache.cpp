// Large buffers that outlive no call by much: the saved states, outputs and gradients of a
// training step, the backward's gate gradients, the whole-sequence projection. Freed ones
// wait in a bounded cache for the next call of the same shape, so that it does not fault
// their pages in again. Without it a repeated call faulted its large arrays in afresh every
// time (3,366-12,801 page faults a call at T=100, B=16 and 64; 0 with it), and on the 2-core
// EPYC VM that cost 0.6-1.3 ms a MiB, 14-18 ms of system time in the forward of a 50 ms LSTM
// training step at T=100, B=16, H=256 (PyTorch's own training step spends 190 ms of 700 in
// the kernel at B=64, H=512). New blocks from 4 MiB on are aligned
// to 2 MiB and advised huge pages (as NumPy advises its arrays), which faults them in faster.
// The public API (fusedrnn.hpp): allocate_buffer, free_buffer, empty_cache and the rest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <unordered_map>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "fork_fresh.hpp"
#include "fusedrnn/fusedrnn.hpp"

namespace fusedrnn {
namespace {

// Blocks below this come from malloc and go back to it.
constexpr size_t kCachedFrom = size_t(1) << 20;

constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kHugeFrom = size_t(4) << 20;  // NumPy's threshold for the advice too

// Sanitizers must see every free (a reused block hides a use after free), so their builds
// cache nothing.
#if defined(__has_feature)  // clang
#if __has_feature(address_sanitizer)
#define FUSEDRNN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(FUSEDRNN_ASAN)  // gcc, clang
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// The most the cache holds: FUSEDRNN_CACHE_MB MiB when set (0: nothing), else 512 MiB.
size_t bound_from_environment() {
  if (kSanitized) return 0;
  const char* mb = std::getenv("FUSEDRNN_CACHE_MB");
  if (!mb || !*mb) return size_t(512) << 20;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(mb, &end, 10);
  if (*end != '\0' || v > (SIZE_MAX >> 21)) return size_t(512) << 20;  // not a size: default
  return size_t(v) << 20;
}

struct Block {
  void* p;
  size_t capacity;
};

class Cache {
 public:
  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    // The smallest free block that fits, unless it is more than twice the request: a small
    // call must not pin a large block that the next large call will want.
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->capacity >= bytes && it->capacity <= 2 * bytes &&
          (best == free_.end() || it->capacity < best->capacity))
        best = it;
    if (best == free_.end()) return nullptr;
    const Block b = *best;
    free_.erase(best);
    cached_ -= b.capacity;
    live_[b.p] = b.capacity;
    return b.p;
  }

  void add_live(void* p, size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = capacity;
  }

  // True when p was a cached-size block (now kept or freed); false: not ours, a malloc block.
  bool give_back(void* p) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return false;
    const size_t capacity = it->second;
    live_.erase(it);
    if (capacity > bound_) {
      lock.unlock();
      std::free(p);
      return true;
    }
    std::deque<Block> evicted;
    while (cached_ + capacity > bound_) {  // oldest first
      evicted.push_back(free_.front());
      cached_ -= free_.front().capacity;
      free_.pop_front();
    }
    free_.push_back({p, capacity});
    cached_ += capacity;
    lock.unlock();
    for (const Block& b : evicted) std::free(b.p);
    return true;
  }

  void release() {
    std::deque<Block> all;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      all.swap(free_);
      cached_ = 0;
    }
    for (const Block& b : all) std::free(b.p);
  }

  size_t bound() const { return bound_; }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  void poison() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Block& b : free_) std::memset(b.p, 0xFF, b.capacity);
  }

 private:
  const size_t bound_ = bound_from_environment();
  std::mutex mutex_;
  std::deque<Block> free_;                    // oldest first
  std::unordered_map<void*, size_t> live_;  // handed out: capacity by address
  size_t cached_ = 0;
};

Cache& cache() { return cpu::fork_fresh<Cache>(); }  // blocks from before a fork go to free()

void* checked(void* p) {
  if (!p) throw std::bad_alloc();
  return p;
}

void* fresh_block(size_t capacity) {
  if (capacity < kHugeFrom) return checked(std::aligned_alloc(64, capacity));
  void* p = checked(std::aligned_alloc(kHugePage, capacity));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, capacity, MADV_HUGEPAGE);  // advice only: without it the pages are 4 KiB
#endif
  return p;
}

}  // namespace

void* allocate_buffer(size_t bytes) {
  if (bytes > SIZE_MAX / 4) throw std::bad_alloc();  // no size arithmetic below may wrap
  bytes = bytes == 0 ? 1 : bytes;
  if (bytes < kCachedFrom) return checked(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (void* p = cache().take(bytes)) return p;
  // Whole huge pages from 4 MiB on (the advice then covers every page), whole 64 KiB below.
  const size_t unit = bytes >= kHugeFrom ? kHugePage : size_t(64) << 10;
  const size_t capacity = (bytes + unit - 1) / unit * unit;
  void* p = fresh_block(capacity);
  cache().add_live(p, capacity);
  return p;
}

void free_buffer(void* p) {
  if (p && !cache().give_back(p)) std::free(p);
}

void empty_cache() { cache().release(); }

size_t cached_bytes() { return cache().cached(); }

size_t cache_limit() { return cache().bound(); }

void poison_cache() { cache().poison(); }

}  // namespace fusedrnn
