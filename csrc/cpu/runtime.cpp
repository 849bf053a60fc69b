// Thread count, the buffer cache and build facts: what `python -m fusedrnn info` reports.
#include <cblas.h>

#include "buffer_cache.hpp"
#include "fusedrnn/fusedrnn.hpp"
#include "step_kernels.hpp"
#include "thread_team.hpp"

namespace fusedrnn {
void set_num_threads(int n) { cpu::set_team_size(n); }

int get_num_threads() { return cpu::team_size(); }

const char* cpu_simd_level() { return cpu::step_kernels<float>().isa; }

void set_take_over_patience(int64_t ns) { cpu::set_take_over_patience(ns); }

void* allocate_buffer(size_t bytes) { return cpu::allocate_buffer(bytes); }

void free_buffer(void* p) { cpu::free_buffer(p); }

void empty_cache() { cpu::release_cached_buffers(); }

size_t cached_bytes() { return cpu::cached_buffer_bytes(); }

size_t cache_limit() { return cpu::buffer_cache_limit(); }

void poison_cache() { cpu::poison_cached_buffers(); }

const char* blas_info() { return scipy_openblas_get_config(); }

}  // namespace fusedrnn
