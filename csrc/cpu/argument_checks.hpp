// The core's argument checks: what every public entry point verifies before it touches memory.
// A failure throws std::invalid_argument whose message starts with the argument's name and
// shows what was expected against what was received, in the Python API's words (the binding
// passes these messages on unchanged, as ValueError).
#pragma once

#include <cstdint>

#include "fusedrnn/fusedrnn.hpp"

namespace fusedrnn::cpu {

template <typename T>
void check_forward(const LstmProblem<T>& p, const T* h0, const T* c0, const T* y, const T* hn,
                   const T* cn, const LstmSaved<T>* saved);
template <typename T>
void check_backward(const LstmProblem<T>& p, const LstmSaved<T>& saved, const T* dy,
                    const T* dhn, const T* dcn, const LstmGrads<T>& g);
template <typename T>
void check_forward(const GruProblem<T>& p, const T* h0, const T* y, const T* hn,
                   const GruSaved<T>* saved);
template <typename T>
void check_backward(const GruProblem<T>& p, const GruSaved<T>& saved, const T* dy,
                    const T* dhn, const GruGrads<T>& g);

template <typename T>
void check_packing(const T* w_ih, const T* w_hh, const T* w_hr, int gates, int64_t hidden,
                   int64_t input, int64_t proj, bool linear_before_reset);

}  // namespace fusedrnn::cpu
