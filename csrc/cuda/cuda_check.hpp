// Status checks for every CUDA runtime call, kernel launch and cuBLAS call: a failure throws
// std::runtime_error with the library's own error string and where it happened (pybind11 turns
// it into a RuntimeError).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace fusedrnn::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("fusedrnn CUDA: ") + what + " failed: " +
                           cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") at " + file +
                           ":" + std::to_string(line));
}

[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* what, const char* file,
                                      int line) {
  throw std::runtime_error(std::string("fusedrnn CUDA: ") + what + " failed: " +
                           cublasGetStatusName(s) + " (" + cublasGetStatusString(s) + ") at " +
                           file + ":" + std::to_string(line));
}

}  // namespace fusedrnn::cuda

#define FUSEDRNN_CUDA_CHECK(call)                                                    \
  do {                                                                               \
    const cudaError_t fusedrnn_e_ = (call);                                          \
    if (fusedrnn_e_ != cudaSuccess)                                                  \
      ::fusedrnn::cuda::throw_cuda(fusedrnn_e_, #call, __FILE__, __LINE__);          \
  } while (0)

#define FUSEDRNN_CUBLAS_CHECK(call)                                                  \
  do {                                                                               \
    const cublasStatus_t fusedrnn_s_ = (call);                                       \
    if (fusedrnn_s_ != CUBLAS_STATUS_SUCCESS)                                        \
      ::fusedrnn::cuda::throw_cublas(fusedrnn_s_, #call, __FILE__, __LINE__);        \
  } while (0)

// After a <<<...>>> launch: configuration errors show up here, not at the launch.
#define FUSEDRNN_LAUNCH_CHECK(kernel)                                                \
  do {                                                                               \
    const cudaError_t fusedrnn_e_ = cudaGetLastError();                              \
    if (fusedrnn_e_ != cudaSuccess)                                                  \
      ::fusedrnn::cuda::throw_cuda(fusedrnn_e_, "launch of " #kernel, __FILE__, __LINE__); \
  } while (0)
