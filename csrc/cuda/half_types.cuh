// Storage types and float32 math: every kernel loads its operands with to_float and stores with
// from_float<T>, so one template serves float, __half and __nv_bfloat16 storage.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <library_types.h>

namespace fusedrnn::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// An optional operand (a bias): 0 when absent.
template <typename T>
__device__ __forceinline__ float load_or_zero(const T* p, long long i) {
  return p ? to_float(p[i]) : 0.0f;
}

// The cuBLAS / CUDA data type tag of a storage type.
template <typename T>
constexpr cudaDataType_t cuda_data_type();
template <>
constexpr cudaDataType_t cuda_data_type<float>() { return CUDA_R_32F; }
template <>
constexpr cudaDataType_t cuda_data_type<__half>() { return CUDA_R_16F; }
template <>
constexpr cudaDataType_t cuda_data_type<__nv_bfloat16>() { return CUDA_R_16BF; }

}  // namespace fusedrnn::cuda
