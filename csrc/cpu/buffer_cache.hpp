// Large buffers that outlive no call by much: the saved states, outputs and gradients of a
// training step, the backward's gate gradients, the whole-sequence projection. Freed ones
// wait in a bounded cache for the next call of the same shape, so that it does not fault
// their pages in again. Large fresh memory comes from mmap every time (glibc's heap gives
// back its top, and its mmap threshold stops at 32 MiB), and its first touch faults every
// page in: on the 2-core EPYC VM that cost 0.6-1.3 ms a MiB, 14-18 ms of system time in the
// forward of a 50 ms LSTM training step at T=100, B=16, H=256 (PyTorch's own training step
// spends 190 ms of 700 in the kernel at B=64, H=512). New blocks from 4 MiB on are aligned to 2 MiB and advised
// huge pages (as NumPy advises its arrays), which faults them in faster.
#pragma once

#include <cstddef>

namespace fusedrnn::cpu {

// Blocks below this come from malloc and go back to it.
constexpr size_t kCachedFrom = size_t(1) << 20;

// At least `bytes` (64-byte aligned); throws std::bad_alloc.
void* allocate_buffer(size_t bytes);
// A block from allocate_buffer (null: nothing).
void free_buffer(void* p);
// Frees every cached block.
void release_cached_buffers();
// What the cache holds now, and the most it may hold (0 in sanitizer builds), bytes.
size_t cached_buffer_bytes();
size_t buffer_cache_limit();
// For tests: sets every byte of the cached blocks to 0xFF (a NaN in float and double).
void poison_cached_buffers();

}  // namespace fusedrnn::cpu
