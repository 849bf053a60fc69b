// Thread count and build facts: what `python -m fusedrnn info` reports.
#include <cblas.h>

#include <string>

#include "fusedrnn/fusedrnn.hpp"
#include "step_kernels.hpp"
#include "thread_team.hpp"

namespace fusedrnn {
void set_num_threads(int n) { cpu::set_team_size(n); }

int get_num_threads() { return cpu::team_size(); }

const char* cpu_simd_level() { return cpu::step_kernels<float>().isa; }

void set_take_over_patience(int64_t ns) { cpu::set_take_over_patience(ns); }

void set_join_delay(int64_t ns) { cpu::set_join_delay(ns); }

void set_claim_delay(int64_t ns) { cpu::set_claim_delay(ns); }

// The BLAS's build and the kernels it chose when it loaded (by CPU, or by OPENBLAS_CORETYPE):
// held to Haswell's on the AVX-512 machine, its GEMMs ran at half speed (130 against 250
// GFLOP/s a core), and so did fusedrnn's weight gradients.
const char* blas_info() {
  static const std::string info =
      std::string(scipy_openblas_get_config()) + "; kernels: " + scipy_openblas_get_corename();
  return info.c_str();
}

}  // namespace fusedrnn
