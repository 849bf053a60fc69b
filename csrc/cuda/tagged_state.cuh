// The persistent forward's state, exchanged between blocks without a grid barrier: each value
// travels with the step it belongs to, in one 64-bit word (the float's bits low, a tag high),
// and a block that needs the state before step s waits for exactly those words (tag s + 1)
// rather than for every block to reach a barrier. A 64-bit store is seen whole or not at all,
// so value and tag cannot tear, and nothing else crosses blocks during the loop.
//
// Two buffers [2, n] alternate by step parity; tag 0 means not yet written. A block overwrites
// a buffer (step s + 2's state over step s's) only after it has read every block's step s + 1
// words, each written after its writer had read step s: no reader can still need it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#if defined(FUSEDRNN_CUDA_EMULATION)
#include <stdexcept>
#include <string>
#endif

#include "half_types.cuh"
#include "launch.cuh"

namespace fusedrnn::cuda {

using TaggedWord = unsigned long long;

// Steps a tagged loop can count: the tag of the state after the last step is T + 1.
constexpr int64_t kMaxTaggedSteps = int64_t(UINT32_MAX) - 1;

__host__ __device__ inline TaggedWord tagged(float value, uint32_t tag) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return (TaggedWord(tag) << 32) | bits;
}

__host__ __device__ inline float value_of(TaggedWord word) {
  const uint32_t bits = static_cast<uint32_t>(word);
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// The value at p once its tag is `tag` (spinning until then).
__device__ inline float wait_tagged(const TaggedWord* p, uint32_t tag) {
  TaggedWord word = *reinterpret_cast<const volatile TaggedWord*>(p);
#if defined(FUSEDRNN_CUDA_EMULATION)
  // Blocks run one after another, step by step: the word must be there already.
  if (static_cast<uint32_t>(word >> 32) != tag)
    throw std::logic_error("tagged state: step " + std::to_string(tag) + " not written");
#else
  while (static_cast<uint32_t>(word >> 32) != tag)
    word = *reinterpret_cast<const volatile TaggedWord*>(p);
#endif
  return value_of(word);
}

__device__ inline void store_tagged(TaggedWord* p, float value, uint32_t tag) {
  *reinterpret_cast<volatile TaggedWord*>(p) = tagged(value, tag);
}

template <typename T>
__global__ void tag_initial_state(int64_t n, const T* h0, TaggedWord* words) {
  FUSEDRNN_GRID_LOOP(i, n) {
    words[i] = tagged(h0 ? to_float(h0[i]) : 0.0f, 1);  // the state before step 0
    words[n + i] = 0;
  }
}

template <typename T>
__global__ void untag_state(int64_t n, const TaggedWord* words, T* h) {
  FUSEDRNN_GRID_LOOP(i, n) h[i] = from_float<T>(value_of(words[i]));
}

}  // namespace fusedrnn::cuda
