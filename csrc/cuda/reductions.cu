// Deterministic column sums (see reductions.cuh).
#include "reductions.cuh"

#include <algorithm>

#include "cuda_check.hpp"
#include "half_types.cuh"

namespace fusedrnn::cuda {
namespace {

constexpr int kCols = 32;        // columns per block: one warp reads 32 consecutive values
constexpr int kLanes = 8;        // row lanes per block
constexpr int64_t kChunk = 512;  // rows per partial sum

int64_t chunks_for(int64_t rows) { return std::max<int64_t>(1, (rows + kChunk - 1) / kChunk); }

#if !defined(FUSEDRNN_CUDA_EMULATION)  // shared memory and barriers: no host emulation

// Block (kCols, kLanes) sums rows [chunk * kChunk, +kChunk) of columns [blockIdx.x * kCols, +kCols)
// into partial[chunk][j], in a fixed order.
template <typename T>
__global__ void partial_column_sums(int64_t rows, int64_t n, const T* m, int64_t ld,
                                    float* partial) {
  __shared__ float lane_sums[kLanes][kCols + 1];
  const int64_t j = int64_t(blockIdx.x) * kCols + threadIdx.x;
  const int64_t begin = int64_t(blockIdx.y) * kChunk;
  const int64_t end = min(rows, begin + kChunk);
  float sum = 0.0f;
  if (j < n)
    for (int64_t r = begin + threadIdx.y; r < end; r += kLanes) sum += to_float(m[r * ld + j]);
  lane_sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || j >= n) return;
  for (int l = 1; l < kLanes; ++l) sum += lane_sums[l][threadIdx.x];
  partial[int64_t(blockIdx.y) * n + j] = sum;
}

template <typename T>
__global__ void finish_column_sums(int64_t chunks, int64_t n, const float* partial, T* out_a,
                                   T* out_b) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  float sum = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) sum += partial[c * n + j];
  if (out_a) out_a[j] = from_float<T>(sum);
  if (out_b) out_b[j] = from_float<T>(sum);
}
#endif

}  // namespace

float* column_sums_scratch(Workspace& ws, int64_t rows, int64_t n) {
  return ws.take<float>(chunks_for(rows) * n);
}

template <typename T>
void column_sums(int64_t rows, int64_t n, const T* m, int64_t ld, T* out_a, T* out_b,
                 float* scratch, cudaStream_t stream) {
  if ((!out_a && !out_b) || n == 0) return;
  if (rows == 0) {  // an empty sum
    if (out_a) FUSEDRNN_CUDA_CHECK(cudaMemsetAsync(out_a, 0, n * sizeof(T), stream));
    if (out_b) FUSEDRNN_CUDA_CHECK(cudaMemsetAsync(out_b, 0, n * sizeof(T), stream));
    return;
  }
#if defined(FUSEDRNN_CUDA_EMULATION)
  (void)scratch;
  for (int64_t j = 0; j < n; ++j) {
    float sum = 0.0f;
    for (int64_t r = 0; r < rows; ++r) sum += to_float(m[r * ld + j]);
    if (out_a) out_a[j] = from_float<T>(sum);
    if (out_b) out_b[j] = from_float<T>(sum);
  }
#else
  const int64_t chunks = chunks_for(rows);
  const dim3 grid(static_cast<unsigned>((n + kCols - 1) / kCols), static_cast<unsigned>(chunks));
  partial_column_sums<T><<<grid, dim3(kCols, kLanes), 0, stream>>>(rows, n, m, ld, scratch);
  FUSEDRNN_LAUNCH_CHECK(partial_column_sums);
  finish_column_sums<T><<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(
      chunks, n, scratch, out_a, out_b);
  FUSEDRNN_LAUNCH_CHECK(finish_column_sums);
#endif
}

#define FUSEDRNN_INSTANTIATE_SUMS(T)                                                    \
  template void column_sums<T>(int64_t, int64_t, const T*, int64_t, T*, T*, float*,      \
                               cudaStream_t);
FUSEDRNN_INSTANTIATE_SUMS(float)
FUSEDRNN_INSTANTIATE_SUMS(__half)
FUSEDRNN_INSTANTIATE_SUMS(__nv_bfloat16)

}  // namespace fusedrnn::cuda
