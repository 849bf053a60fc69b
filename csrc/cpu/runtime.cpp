// Thread count and build facts: what `python -m fusedrnn info` reports.
#include <cblas.h>

#include "fusedrnn/fusedrnn.hpp"
#include "gate_rows.hpp"

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

const char* cpu_simd_level() { return cpu::row_kernels<float>().isa; }

const char* blas_info() { return scipy_openblas_get_config(); }

}  // namespace fusedrnn
