// cuBLAS handles and the row-major GEMM wrapper (see cublas_gemm.hpp).
#include "cublas_gemm.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "cuda_check.hpp"
#include "half_types.cuh"

namespace fusedrnn::cuda {

cublasHandle_t cublas_handle(cudaStream_t stream) {
  // Never destroyed: destroying handles at exit races the driver's own teardown.
  thread_local std::unordered_map<int, cublasHandle_t> handles;
  int device = 0;
  FUSEDRNN_CUDA_CHECK(cudaGetDevice(&device));
  cublasHandle_t& h = handles[device];
  // The default math mode: with CUBLAS_COMPUTE_32F float32 GEMMs stay float32 (no TF32), and
  // half-precision inputs still use the tensor cores.
  if (!h) FUSEDRNN_CUBLAS_CHECK(cublasCreate(&h));
  FUSEDRNN_CUBLAS_CHECK(cublasSetStream(h, stream));
  return h;
}

namespace {

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(std::string("fusedrnn CUDA: GEMM ") + what + " = " +
                                std::to_string(v) + " exceeds cuBLAS's 32-bit sizes");
  return static_cast<int>(v);
}

cublasOperation_t to_cublas(Op op) { return op == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

}  // namespace

template <typename T>
void gemm(cublasHandle_t h, Op op_a, Op op_b, int64_t m, int64_t n, int64_t k, float alpha,
          const T* a, int64_t lda, const T* b, int64_t ldb, float beta, T* c, int64_t ldc,
          cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = beta C; only beta = 0 (C = 0) and 1 (no-op) occur here
    if (beta == 0.0f)
      FUSEDRNN_CUDA_CHECK(cudaMemset2DAsync(c, ldc * sizeof(T), 0, n * sizeof(T), m, stream));
    return;
  }
  // cuBLAS's leading dimensions must be >= 1 even for a matrix it never reads past row 0.
  const auto ld = [](int64_t v) { return v < 1 ? int64_t(1) : v; };
  const cudaDataType_t type = cuda_data_type<T>();
  FUSEDRNN_CUBLAS_CHECK(cublasGemmEx(h, to_cublas(op_b), to_cublas(op_a), to_int(n, "n"),
                                     to_int(m, "m"), to_int(k, "k"), &alpha, b, type,
                                     to_int(ld(ldb), "ldb"), a, type, to_int(ld(lda), "lda"),
                                     &beta, c, type, to_int(ld(ldc), "ldc"), CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT));
}

#define FUSEDRNN_INSTANTIATE_GEMM(T)                                                   \
  template void gemm<T>(cublasHandle_t, Op, Op, int64_t, int64_t, int64_t, float, const T*, \
                        int64_t, const T*, int64_t, float, T*, int64_t, cudaStream_t);
FUSEDRNN_INSTANTIATE_GEMM(float)
FUSEDRNN_INSTANTIATE_GEMM(__half)
FUSEDRNN_INSTANTIATE_GEMM(__nv_bfloat16)

}  // namespace fusedrnn::cuda
