// Launch shapes of the elementwise kernels: one thread per (batch row, unit), a grid-stride loop
// so that any size fits one launch; an empty launch is skipped (CUDA rejects a zero grid).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "cuda_check.hpp"

namespace fusedrnn::cuda {

constexpr int kBlock = 256;

inline dim3 grid_for(int64_t n) {
  // Enough blocks to fill any current GPU several times over; the loop covers the rest.
  return dim3(static_cast<unsigned>(std::min<int64_t>((n + kBlock - 1) / kBlock, 65535)));
}

// for (i in [0, n)) spread over the grid.
#define FUSEDRNN_GRID_LOOP(i, n)                                                     \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);          \
       i += int64_t(blockDim.x) * gridDim.x)

// Enqueue kernel<<<grid_for(n), kBlock, 0, stream>>>(args...) and check the launch.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), int64_t n, cudaStream_t stream, Args&&... args) {
  if (n <= 0) return;
#if defined(FUSEDRNN_CUDA_EMULATION)
  // Host emulation for tests (tests/cuda_emulation): a 1x1 grid, so the kernel's grid-stride
  // loop visits every index on this thread.
  (void)stream;
  kernel(std::forward<Args>(args)...);
#else
  kernel<<<grid_for(n), kBlock, 0, stream>>>(std::forward<Args>(args)...);
  FUSEDRNN_LAUNCH_CHECK(kernel);
#endif
}

}  // namespace fusedrnn::cuda
