// The step kernels for one SIMD level: FUSEDRNN_ISA names the level and its namespace.
// CMake compiles this file once per level with that level's compiler flags.
#include <cstdint>

#include "step_kernels.hpp"

#ifndef FUSEDRNN_ISA
#define FUSEDRNN_ISA generic
#endif
#ifndef FUSEDRNN_VECTOR_BYTES
#define FUSEDRNN_VECTOR_BYTES 16
#endif
#define FUSEDRNN_CAT2(a, b) a##b
#define FUSEDRNN_CAT(a, b) FUSEDRNN_CAT2(a, b)
#define FUSEDRNN_STR2(a) #a
#define FUSEDRNN_STR(a) FUSEDRNN_STR2(a)

#include "gate_rows.hpp"
#include "panel_gemm.hpp"
#include "unpacked_gemm.hpp"
#include "fma_peak.hpp"
#include "stream_probe.hpp"

namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA) {
namespace {

template <typename T>
const StepKernels<T> kKernels = {
    FUSEDRNN_STR(FUSEDRNN_ISA),
    lstm_forward<T>,
    lstm_backward<T>,
    gru_forward_lbr<T>,
    gru_forward_reset<T>,
    gru_forward_new<T>,
    gru_backward_lbr<T>,
    gru_backward_blend<T>,
    gru_backward_reset<T>,
    kPanelLanes<T>,
    panel_gemm<T>,
    row_gemm<T>,
    column_gemm<T>,
    fma_burst<T>,
    stream_burst<T>,
};

}  // namespace

template <typename T>
const StepKernels<T>* kernels() {
  return &kKernels<T>;
}
template const StepKernels<float>* kernels<float>();
template const StepKernels<double>* kernels<double>();

}  // namespace fusedrnn::cpu::FUSEDRNN_CAT(isa_, FUSEDRNN_ISA)
