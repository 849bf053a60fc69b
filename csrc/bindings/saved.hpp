// The opaque `saved` objects that a training forward returns and its backward consumes.
// They hold references to the (contiguous) inputs and the saved block; no copies.
#pragma once

#include <cstdint>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

namespace fusedrnn::bind {

namespace py = pybind11;

struct LstmSavedState {
  bool is_double = false;
  int64_t steps = 0, batch = 0, input = 0, hidden = 0, proj = 0;
  bool reverse = false;
  py::array x, w_ih, w_hh;
  py::object b_ih, b_hh, w_hr, lengths;  // None when absent
  py::array gates, c_prev, h_prev;
};

struct GruSavedState {
  bool is_double = false;
  int64_t steps = 0, batch = 0, input = 0, hidden = 0;
  bool reverse = false, linear_before_reset = true;
  py::array x, w_ih, w_hh;
  py::object b_ih, b_hh, lengths;
  py::array gates, h_prev;
};

template <typename T>
const T* data_or_null(const py::object& o) {
  return o.is_none() ? nullptr : static_cast<const T*>(py::reinterpret_borrow<py::array>(o).data());
}

template <typename T>
const T* data_of(const py::array& a) {
  return static_cast<const T*>(a.data());
}

template <typename T>
T* mutable_data_of(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}

}  // namespace fusedrnn::bind
