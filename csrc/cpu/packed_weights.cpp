// pack_weights (fusedrnn.hpp): the panels of PackedWeights, in the step kernels' lane width.
#include "packed_weights.hpp"

#include "argument_checks.hpp"
#include "step_kernels.hpp"

namespace fusedrnn {

template <typename T>
std::shared_ptr<const PackedWeights<T>> pack_weights(const T* w_ih, const T* w_hh, int gates,
                                                     int64_t hidden, int64_t input,
                                                     const T* w_hr, int64_t proj,
                                                     bool linear_before_reset) {
  if (!w_hr) proj = hidden;
  cpu::check_packing(w_ih, w_hh, w_hr, gates, hidden, input, proj, linear_before_reset);
  return std::make_shared<const PackedWeights<T>>(w_ih, w_hh, w_hr, gates, hidden, input, proj,
                                                  linear_before_reset,
                                                  cpu::step_kernels<T>().panel_lanes);
}

template std::shared_ptr<const PackedWeights<float>> pack_weights<float>(
    const float*, const float*, int, int64_t, int64_t, const float*, int64_t, bool);
template std::shared_ptr<const PackedWeights<double>> pack_weights<double>(
    const double*, const double*, int, int64_t, int64_t, const double*, int64_t, bool);

}  // namespace fusedrnn
