// Row-major GEMMs on cuBLAS (which is column-major): C = alpha op(A) op(B) + beta C with
// C [m, n], op(A) [m, k], op(B) [k, n], every matrix row-major with leading dimension ld*.
// Computed as the column-major C^T = op(B)^T op(A)^T, i.e. cuBLAS with A and B swapped.
// Storage T is float, __half or __nv_bfloat16; accumulation is float32 (CUBLAS_COMPUTE_32F,
// which for float32 data also rules out TF32, so float32 results keep float32 accuracy).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fusedrnn::cuda {

// The calling thread's cuBLAS handle for the current device, bound to `stream`. One handle per
// (thread, device): a handle's stream is per-handle state, so threads must not share one.
cublasHandle_t cublas_handle(cudaStream_t stream);

enum class Op { N, T };  // op(M) = M or M^T

template <typename T>
void gemm(cublasHandle_t h, Op op_a, Op op_b, int64_t m, int64_t n, int64_t k, float alpha,
          const T* a, int64_t lda, const T* b, int64_t ldb, float beta, T* c, int64_t ldc,
          cudaStream_t stream);

}  // namespace fusedrnn::cuda
