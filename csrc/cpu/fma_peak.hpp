// The FMA-throughput probe (included by step_kernels.cpp only, once per SIMD level): a loop of
// multiply-adds on registers alone, so that its rate is the core's arithmetic peak at this
// level, the ceiling against which the GEMMs' rates are read.
#pragma once

#include <cstdint>
#include <cstring>

#include "panel_gemm.hpp"

namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA) {
namespace {

// Independent chains: at least FMA latency x FMA ports (4 x 2 on Zen 3, 4 x 2 on Skylake), and
// few enough to stay in registers next to the two operands (16 vector registers on AVX2).
// Without -ffast-math the compiler may not reassociate them into fewer chains.
constexpr int kFmaChains = 12;

// Runs `iterations` rounds of kFmaChains vector FMAs; stores a sum of the accumulators in
// *sink so that none is optimised away. Returns the floating-point operations done (2 per lane
// and FMA). `scale` and `step` come from the caller so the compiler cannot fold the loop.
template <typename T>
int64_t fma_burst(int64_t iterations, T scale, T step, T* sink) {
  using V = typename Vec<T>::type;
  constexpr int lanes = FUSEDRNN_VECTOR_BYTES / sizeof(T);
  V acc[kFmaChains], m, a;
  for (int l = 0; l < lanes; ++l) {
    m[l] = scale;
    a[l] = step;
  }
  for (int c = 0; c < kFmaChains; ++c) acc[c] = a * T(c + 1);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kFmaChains; ++c) acc[c] = acc[c] * m + a;
  }
  V sum = acc[0];
  for (int c = 1; c < kFmaChains; ++c) sum += acc[c];
  T out = 0;
  for (int l = 0; l < lanes; ++l) out += sum[l];
  *sink = out;
  return iterations * kFmaChains * lanes * 2;
}

}  // namespace
}  // namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA)
