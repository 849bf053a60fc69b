// Picks the step kernels for this CPU once, at first use.
#include <cstdlib>
#include <cstring>

#include "step_kernels.hpp"

namespace fusedrnn::cpu {

#define FUSEDRNN_DECLARE_ISA(name)                  \
  namespace isa_##name {                            \
  template <typename T>                             \
  const StepKernels<T>* kernels();                   \
  extern template const StepKernels<float>* kernels<float>();   \
  extern template const StepKernels<double>* kernels<double>(); \
  }
FUSEDRNN_DECLARE_ISA(generic)
#if defined(FUSEDRNN_HAVE_X86_ISAS)
FUSEDRNN_DECLARE_ISA(avx2)
FUSEDRNN_DECLARE_ISA(avx512)
FUSEDRNN_DECLARE_ISA(avx2wide)
#endif

namespace {

enum Level { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

Level cpu_level() {
#if defined(FUSEDRNN_HAVE_X86_ISAS)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq");
  return avx512 ? kAvx512 : (avx2 ? kAvx2 : kGeneric);
#else
  return kGeneric;
#endif
}

// FUSEDRNN_SIMD can lower the level (to test every path on one machine), never raise it.
Level chosen_level() {
  Level level = cpu_level();
  if (const char* want = std::getenv("FUSEDRNN_SIMD")) {
    Level cap = level;
    if (!std::strcmp(want, "generic")) cap = kGeneric;
    else if (!std::strcmp(want, "avx2")) cap = kAvx2;
    if (cap < level) level = cap;
  }
  return level;
}

template <typename T>
const StepKernels<T>* select() {
#if defined(FUSEDRNN_HAVE_X86_ISAS)
  // The AVX-512 build's panel layout on AVX2 instructions, for tests only.
  const char* want = std::getenv("FUSEDRNN_SIMD");
  if (want && !std::strcmp(want, "avx2wide") && cpu_level() >= kAvx2)
    return isa_avx2wide::kernels<T>();
#endif
  switch (chosen_level()) {
#if defined(FUSEDRNN_HAVE_X86_ISAS)
    case kAvx512:
      return isa_avx512::kernels<T>();
    case kAvx2:
      return isa_avx2::kernels<T>();
#endif
    default:
      return isa_generic::kernels<T>();
  }
}

}  // namespace

template <typename T>
const StepKernels<T>& step_kernels() {
  static const StepKernels<T>* const k = select<T>();
  return *k;
}
template const StepKernels<float>& step_kernels<float>();
template const StepKernels<double>& step_kernels<double>();

}  // namespace fusedrnn::cpu
