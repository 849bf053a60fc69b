// Device queries for fusedrnn.cuda.is_available() and `python -m fusedrnn info`.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "api.hpp"
#include "cuda_check.hpp"

namespace fusedrnn::cuda {

namespace {
std::atomic<uint64_t> persistent_launches{0};
}  // namespace

uint64_t persistent_launch_count() { return persistent_launches.load(); }
void count_persistent_launch() { persistent_launches.fetch_add(1); }

int device_count() {
  int n = 0;
  // No driver or no device is an error with a useful name (cudaErrorNoDevice,
  // cudaErrorInsufficientDriver): thrown as just that, for fusedrnn.cuda.unavailable_reason().
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e));
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  FUSEDRNN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " + std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
}

namespace {
std::string version_str(int v) {  // 13000 -> "13.0"
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}
}  // namespace

std::string runtime_info() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  int major = 0, minor = 0, patch = 0;  // the loaded cuBLAS, which may be newer than the headers
  cublasGetProperty(MAJOR_VERSION, &major);
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  const std::string cublas =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  return "CUDA runtime " + version_str(runtime) + ", driver " +
         (driver ? version_str(driver) : std::string("none")) + ", cuBLAS " + cublas;
}

}  // namespace fusedrnn::cuda
