// Thread count and build facts: what `python -m fusedrnn info` reports.
#include <cblas.h>

#include "fusedrnn/fusedrnn.hpp"

namespace fusedrnn {
namespace {
// The BLAS's own default, remembered so that set_num_threads(0) can restore it.
int default_threads() {
  static const int n = scipy_openblas_get_num_threads();
  return n;
}
}  // namespace

void set_num_threads(int n) {
  const int d = default_threads();
  scipy_openblas_set_num_threads(n > 0 ? n : d);
}

int get_num_threads() {
  default_threads();
  return scipy_openblas_get_num_threads();
}

const char* cpu_simd_level() {
#if defined(__AVX512F__)
  return "AVX512";
#elif defined(__AVX2__)
  return "AVX2";
#elif defined(__SSE2__) || defined(_M_X64)
  return "SSE2";
#elif defined(__ARM_NEON)
  return "NEON";
#else
  return "scalar";
#endif
}

const char* blas_info() { return scipy_openblas_get_config(); }

}  // namespace fusedrnn
