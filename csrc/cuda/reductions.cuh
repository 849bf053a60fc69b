// Column sums (the bias gradients: the sum of the gate gradients over all T*B rows) and state
// initialisation. Column sums run in two deterministic passes, float32 partial sums per chunk
// of rows and then their sum, so the result is the same from run to run (no atomics).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_check.hpp"
#include "workspace.hpp"

namespace fusedrnn::cuda {

// Partial sums scratch for column_sums over `rows` rows of n columns.
float* column_sums_scratch(Workspace& ws, int64_t rows, int64_t n);

// out_a[j] = out_b[j] = sum_r m[r * ld + j] for j < n; out_a / out_b null: not wanted.
template <typename T>
void column_sums(int64_t rows, int64_t n, const T* m, int64_t ld, T* out_a, T* out_b,
                 float* scratch, cudaStream_t stream);

// dst[count] = src, or zeros when src is null (a missing initial state or gradient).
template <typename T>
void copy_or_zero(int64_t count, const T* src, T* dst, cudaStream_t stream) {
  if (count == 0) return;
  if (src)
    FUSEDRNN_CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyDeviceToDevice, stream));
  else
    FUSEDRNN_CUDA_CHECK(cudaMemsetAsync(dst, 0, count * sizeof(T), stream));  // 0 bits: +0.0
}

}  // namespace fusedrnn::cuda
