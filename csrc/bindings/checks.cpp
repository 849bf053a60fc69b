#include "checks.hpp"

namespace fusedrnn::bind {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::string shape_str(const std::vector<Dim>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::string(dims[i].name) + "=" + std::to_string(dims[i].size);
  }
  if (dims.size() == 1) s += ",";
  return s + ")";
}

std::string dtype_str(const py::dtype& dt) { return py::str(dt); }

bool same_dtype(const py::dtype& a, const py::dtype& b) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.ptr(), b.ptr());
}

bool is_double(const char* name, py::handle x) {
  if (!py::isinstance<py::array>(x))
    throw py::type_error(std::string(name) + ": expected a numpy array, got " +
                         std::string(py::str(py::type::of(x).attr("__name__"))));
  auto dt = py::reinterpret_borrow<py::array>(x).dtype();
  if (same_dtype(dt, py::dtype::of<double>())) return true;
  if (same_dtype(dt, py::dtype::of<float>())) return false;
  throw py::type_error(std::string(name) + ": expected dtype float32 or float64, got " +
                       dtype_str(dt));
}

py::object out_item(py::handle out, int n, int i, const char* form) {
  if (out.is_none()) return py::none();
  if (!py::isinstance<py::tuple>(out) || py::len(out) != static_cast<size_t>(n))
    throw py::type_error(std::string("out: expected None or a tuple ") + form);
  return py::reinterpret_borrow<py::tuple>(out)[i];
}

std::vector<int64_t> shape_of(const char* name, py::handle obj, int ndim, const char* form) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy array, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  std::vector<int64_t> shape(arr.shape(), arr.shape() + arr.ndim());
  if (arr.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) +
                          "-D array " + form + ", got shape " + shape_str(shape));
  return shape;
}

std::optional<Array<int64_t>> take_lengths(py::handle obj, int64_t batch) {
  if (obj.is_none()) return std::nullopt;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("lengths: expected a numpy array, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::value_error("lengths: expected integers, got dtype " + dtype_str(arr.dtype()));
  if (arr.ndim() != 1 || arr.shape(0) != batch) {
    std::vector<int64_t> got(arr.shape(), arr.shape() + arr.ndim());
    throw py::value_error("lengths: expected shape (B=" + std::to_string(batch) + ",), got " +
                          shape_str(got));
  }
  // uint64 values above INT64_MAX wrap to negatives here, which the core rejects.
  return Array<int64_t>::ensure(arr.attr("astype")("int64", py::arg("casting") = "unsafe"));
}

}  // namespace fusedrnn::bind
