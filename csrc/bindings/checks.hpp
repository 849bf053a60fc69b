// Argument checks for the bindings: every error names the argument and shows what was
// expected against what was received (TypeError for dtypes, ValueError for shapes and values).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "fusedrnn/fusedrnn.hpp"

namespace fusedrnn::bind {

namespace py = pybind11;

template <typename T>
using Array = py::array_t<T, py::array::c_style>;

// A shape with symbolic names for the message: {{"T", 5}, {"B", 3}} prints (T=5, B=3).
struct Dim {
  const char* name;
  int64_t size;
};

std::string shape_str(const std::vector<int64_t>& shape);
std::string shape_str(const std::vector<Dim>& dims);
std::string dtype_str(const py::dtype& dt);

// NumPy's own dtype equivalence: an equal dtype need not be the same object (an unpickled
// one is not), and a byte-swapped float32 is not float32.
bool same_dtype(const py::dtype& a, const py::dtype& b);

// x: the argument that fixes the dtype of the call. Returns true for float64, false for float32.
bool is_double(const char* name, py::handle x);

// The array obj as a C-contiguous array of T: no copy when it is one already.
template <typename T>
Array<T> take(const char* name, py::handle obj, const std::vector<Dim>& dims) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy array, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!same_dtype(arr.dtype(), py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": expected dtype " +
                         dtype_str(py::dtype::of<T>()) + " (the dtype of x), got " +
                         dtype_str(arr.dtype()));
  bool ok = arr.ndim() == static_cast<py::ssize_t>(dims.size());
  for (size_t i = 0; ok && i < dims.size(); ++i) ok = arr.shape(i) == dims[i].size;
  if (!ok) {
    std::vector<int64_t> got(arr.shape(), arr.shape() + arr.ndim());
    throw py::value_error(std::string(name) + ": expected shape " + shape_str(dims) + ", got " +
                          shape_str(got));
  }
  return Array<T>::ensure(arr);
}

template <typename T>
std::optional<Array<T>> take_optional(const char* name, py::handle obj,
                                      const std::vector<Dim>& dims) {
  if (obj.is_none()) return std::nullopt;
  return take<T>(name, obj, dims);
}

template <typename T>
const T* ptr(const std::optional<Array<T>>& a) {
  return a ? a->data() : nullptr;
}

// A new C-contiguous array. Its memory comes from the core's buffer cache, which keeps large
// freed blocks for the next call: the arrays of a training step are the same every step.
template <typename T>
Array<T> fresh(const std::vector<py::ssize_t>& shape) {
  size_t bytes = sizeof(T);
  for (py::ssize_t n : shape)
    if (__builtin_mul_overflow(bytes, static_cast<size_t>(n), &bytes))
      throw py::value_error("fusedrnn: array of shape " + shape_str(std::vector<int64_t>(
                            shape.begin(), shape.end())) + " is too large to allocate");
  void* p = fusedrnn::allocate_buffer(bytes);
  py::capsule owner(p, [](void* q) { fusedrnn::free_buffer(q); });
  return Array<T>(shape, static_cast<T*>(p), owner);
}

// An output buffer: a new array when obj is None, else obj itself after checking that it is a
// writeable C-contiguous array of T with the expected shape (written in place, never copied).
template <typename T>
Array<T> output(const char* name, py::handle obj, const std::vector<Dim>& dims) {
  if (obj.is_none()) {
    std::vector<py::ssize_t> shape;
    for (const Dim& d : dims) shape.push_back(d.size);
    return fresh<T>(shape);
  }
  auto arr = take<T>(name, obj, dims);  // checks type, dtype and shape
  auto given = py::reinterpret_borrow<py::array>(obj);
  if (!given.writeable() || !(given.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a writeable C-contiguous array");
  return arr;  // the same buffer: ensure() does not copy a C-contiguous array of T
}

// Item i of the `out` argument: None when out is None; else out must be a tuple of n items.
py::object out_item(py::handle out, int n, int i, const char* form);

// The shape of an array argument (any dtype) after checking its number of dimensions;
// `form` names the dimensions for the message, e.g. "(T, B, I)".
std::vector<int64_t> shape_of(const char* name, py::handle obj, int ndim, const char* form);

// lengths: None, or integers of shape (B,); returned as int64 (the core checks their range).
std::optional<Array<int64_t>> take_lengths(py::handle obj, int64_t batch);

}  // namespace fusedrnn::bind
