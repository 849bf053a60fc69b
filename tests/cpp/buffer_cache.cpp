// The buffer cache's policy through the C++ API: prints "case: value" lines for
// tests/test_embedding.py. Blocks are never touched, so no memory is committed.
#include <cstdint>
#include <cstdio>
#include <vector>

#include <fusedrnn/fusedrnn.hpp>

namespace {

constexpr size_t kMiB = size_t(1) << 20;

void show(const char* name, size_t value) { std::printf("%s: %zu\n", name, value); }

}  // namespace

int main() {
  fusedrnn::empty_cache();
  show("limit_mib", fusedrnn::cache_limit() / kMiB);

  void* small = fusedrnn::allocate_buffer(1000);
  show("small_aligned", reinterpret_cast<uintptr_t>(small) % 64 == 0);
  fusedrnn::free_buffer(small);
  show("small_cached", fusedrnn::cached_bytes());  // malloc's business, not the cache's

  void* big = fusedrnn::allocate_buffer(10 * kMiB);
  show("big_on_huge_page", reinterpret_cast<uintptr_t>(big) % (2 * kMiB) == 0);
  fusedrnn::free_buffer(big);
  show("big_cached_mib", fusedrnn::cached_bytes() / kMiB);
  void* again = fusedrnn::allocate_buffer(10 * kMiB - 100);  // the same block, reused
  show("reused", again == big);
  fusedrnn::free_buffer(again);

  void* half = fusedrnn::allocate_buffer(4 * kMiB);  // a 10 MiB block is too big for it
  show("not_twice_the_request", half != big);
  fusedrnn::free_buffer(half);
  show("both_cached_mib", fusedrnn::cached_bytes() / kMiB);

  // Past the limit the oldest blocks go first; a block larger than the limit is not kept.
  std::vector<void*> blocks;
  for (int i = 0; i < 5; ++i) blocks.push_back(fusedrnn::allocate_buffer(150 * kMiB));
  for (void* p : blocks) fusedrnn::free_buffer(p);
  show("bounded_mib", fusedrnn::cached_bytes() / kMiB);
  void* huge = fusedrnn::allocate_buffer(fusedrnn::cache_limit() + kMiB);
  fusedrnn::free_buffer(huge);
  show("after_huge_mib", fusedrnn::cached_bytes() / kMiB);

  fusedrnn::empty_cache();
  show("emptied", fusedrnn::cached_bytes());
  return 0;
}
