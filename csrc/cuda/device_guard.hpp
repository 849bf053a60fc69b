// Makes `device` current for a scope and restores the caller's device after, so that a call
// on device 1 leaves a CuPy or PyTorch thread on device 0 where it was.
#pragma once

#include <cuda_runtime.h>

#include "cuda_check.hpp"

namespace fusedrnn::cuda {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    FUSEDRNN_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) FUSEDRNN_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }  // no throw from a destructor
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace fusedrnn::cuda
