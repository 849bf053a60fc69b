// The PackedWeights objects of fusedrnn.pack_weights: a layer's weights packed once for many
// forward calls (fusedrnn.hpp, pack_weights), with the arrays they were packed from.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.hpp"
#include "fusedrnn/fusedrnn.hpp"

namespace fusedrnn::bind {

namespace py = pybind11;

struct PackedState {
  bool is_double = false;
  int gates = 0;
  int64_t hidden = 0, input = 0, proj = 0;
  bool linear_before_reset = true;
  py::array w_ih, w_hh;                 // what was packed: C-contiguous, kept alive
  py::object w_hr = py::none();         // with a projection, else None
  std::shared_ptr<const void> weights;  // PackedWeights<float or double>
};

// A forward's `packed` argument: null for None, else the packed weights, which must hold the
// call's dtype (the core checks that they were packed from the call's weights).
template <typename T>
const PackedWeights<T>* packed_of(py::handle obj) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<PackedState>(obj))
    throw py::type_error("packed: expected the PackedWeights of fusedrnn.pack_weights, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  const auto& st = obj.cast<const PackedState&>();
  if (st.is_double != std::is_same_v<T, double>)
    throw py::type_error(std::string("packed: expected weights packed as ") +
                         (std::is_same_v<T, double> ? "float64" : "float32") +
                         " (the dtype of x), got " + (st.is_double ? "float64" : "float32"));
  return static_cast<const PackedWeights<T>*>(st.weights.get());
}

}  // namespace fusedrnn::bind
