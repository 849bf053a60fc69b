// Host emulation: cublasGemmEx as a plain column-major triple loop with float accumulation,
// after the argument checks cuBLAS itself makes (leading dimensions, sizes), so that a call
// the real library would reject fails here too.
#pragma once

#include <cstdint>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"
#include "library_types.h"

struct cublasContext {};
using cublasHandle_t = cublasContext*;
enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 };
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68 };
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };

inline const char* cublasGetStatusName(cublasStatus_t s) {
  return s ? "CUBLAS_STATUS_INVALID_VALUE" : "CUBLAS_STATUS_SUCCESS";
}
inline const char* cublasGetStatusString(cublasStatus_t s) {
  return s ? "an invalid numeric value was used as an argument" : "success";
}
inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
  static cublasContext context;
  *h = &context;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasGetProperty(libraryPropertyType, int* v) {
  *v = 0;
  return CUBLAS_STATUS_SUCCESS;
}

namespace fusedrnn_emulation {
inline float load(const void* p, cudaDataType_t t, int64_t i) {
  switch (t) {
    case CUDA_R_16F: return __half2float(static_cast<const __half*>(p)[i]);
    case CUDA_R_16BF: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}
inline void store(void* p, cudaDataType_t t, int64_t i, float v) {
  switch (t) {
    case CUDA_R_16F: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case CUDA_R_16BF: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(p)[i] = v;
  }
}
inline int max1(int v) { return v < 1 ? 1 : v; }
}  // namespace fusedrnn_emulation

// C [m, n] = alpha op(A) op(B) + beta C, column-major; alpha, beta: float (compute 32F).
inline cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                   int m, int n, int k, const void* alpha, const void* A,
                                   cudaDataType_t at, int lda, const void* B, cudaDataType_t bt,
                                   int ldb, const void* beta, void* C, cudaDataType_t ct, int ldc,
                                   cublasComputeType_t, cublasGemmAlgo_t) {
  using namespace fusedrnn_emulation;
  if (!h || m < 0 || n < 0 || k < 0 || at != bt || bt != ct) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < max1(ta == CUBLAS_OP_N ? m : k) || ldb < max1(tb == CUBLAS_OP_N ? k : n) ||
      ldc < max1(m))
    return CUBLAS_STATUS_INVALID_VALUE;
  const float a_ = *static_cast<const float*>(alpha), b_ = *static_cast<const float*>(beta);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      float sum = 0.0f;
      for (int l = 0; l < k; ++l) {
        const float x = load(A, at, ta == CUBLAS_OP_N ? i + int64_t(l) * lda : l + int64_t(i) * lda);
        const float y = load(B, bt, tb == CUBLAS_OP_N ? l + int64_t(j) * ldb : j + int64_t(l) * ldb);
        sum += x * y;
      }
      const int64_t at_c = i + int64_t(j) * ldc;
      // beta = 0: C is not read (it may hold garbage or NaN), as in cuBLAS.
      store(C, ct, at_c, a_ * sum + (b_ == 0.0f ? 0.0f : b_ * load(C, ct, at_c)));
    }
  return CUBLAS_STATUS_SUCCESS;
}
