// fusedrnn.pack_weights for Python: check, take the arrays, release the GIL, pack.
#include "bindings.hpp"

#include <string>
#include <utility>

#include "checks.hpp"
#include "fusedrnn/fusedrnn.hpp"
#include "packed.hpp"

namespace fusedrnn::bind {
namespace {

template <typename T>
PackedState pack(py::handle w_ih_obj, py::handle w_hh_obj, py::handle w_hr_obj,
                 bool linear_before_reset) {
  const auto whh = shape_of("w_hh", w_hh_obj, 2, "(G*H, H)");
  const bool projected = !w_hr_obj.is_none();
  const auto whr = projected ? shape_of("w_hr", w_hr_obj, 2, "(P, H)") : whh;
  const int64_t H = whr[1], P = projected ? whr[0] : H;
  if (projected && (H < 1 || whh[0] != 4 * H))
    throw py::value_error("w_hh: expected shape (4*H=" + std::to_string(4 * H) + ", P=" +
                          std::to_string(P) + ") (an LSTM with projection), got " +
                          shape_str(whh));
  if (H < 1 || (whh[0] != 3 * H && whh[0] != 4 * H))
    throw py::value_error("w_hh: expected shape (4*H, H) (an LSTM) or (3*H, H) (a GRU) with "
                          "H >= 1, got " + shape_str(whh));
  const int gates = static_cast<int>(whh[0] / H);
  const int64_t I = shape_of("w_ih", w_ih_obj, 2, "(G*H, I)")[1];
  for (auto [name, obj] : {std::pair{"w_hh", w_hh_obj}, std::pair{"w_hr", w_hr_obj}}) {
    if (obj.is_none()) continue;
    const auto dtype = py::reinterpret_borrow<py::array>(obj).dtype();
    if (!same_dtype(dtype, py::dtype::of<T>()))
      throw py::type_error(std::string(name) + ": expected dtype " +
                           dtype_str(py::dtype::of<T>()) + " (the dtype of w_ih), got " +
                           dtype_str(dtype));
  }
  const std::string G = std::to_string(gates) + "*H";
  PackedState st;
  st.is_double = std::is_same_v<T, double>;
  st.gates = gates, st.hidden = H, st.input = I, st.proj = P;
  st.linear_before_reset = linear_before_reset;
  st.w_ih = take<T>("w_ih", w_ih_obj, {{G.c_str(), gates * H}, {"I", I}});
  st.w_hh = take<T>("w_hh", w_hh_obj, {{G.c_str(), gates * H}, {projected ? "P" : "H", P}});
  const T* w_hr = nullptr;
  if (projected) {
    auto a = take<T>("w_hr", w_hr_obj, {{"P", P}, {"H", H}});
    w_hr = a.data();
    st.w_hr = a;
  }
  const T* w_ih = static_cast<const T*>(st.w_ih.data());
  const T* w_hh = static_cast<const T*>(st.w_hh.data());
  {
    py::gil_scoped_release nogil;
    st.weights = pack_weights<T>(w_ih, w_hh, gates, H, I, w_hr, P, linear_before_reset);
  }
  return st;
}

std::string describe(const PackedState& s) {
  const bool projected = !s.w_hr.is_none();
  const char* cell = s.gates == 4 ? "LSTM" : s.linear_before_reset ? "GRU" : "GRU (original)";
  return std::string("<fusedrnn PackedWeights ") + cell +
         " H=" + std::to_string(s.hidden) + " I=" + std::to_string(s.input) +
         (projected ? " P=" + std::to_string(s.proj) : "") +
         (s.is_double ? " float64>" : " float32>");
}

}  // namespace

void bind_packed(py::module_& m) {
  py::class_<PackedState>(m, "PackedWeights",
                          "A layer's weights packed once for many forward calls (opaque).")
      .def_property_readonly("w_ih", [](const PackedState& s) { return s.w_ih; })
      .def_property_readonly("w_hh", [](const PackedState& s) { return s.w_hh; })
      .def_property_readonly("w_hr", [](const PackedState& s) { return s.w_hr; })
      .def_property_readonly("gates", [](const PackedState& s) { return s.gates; })
      .def_property_readonly("hidden_size", [](const PackedState& s) { return s.hidden; })
      .def_property_readonly("input_size", [](const PackedState& s) { return s.input; })
      .def_property_readonly("linear_before_reset",
                             [](const PackedState& s) { return s.linear_before_reset; })
      .def("__repr__", &describe);

  m.def(
      "pack_weights",
      [](py::handle w_ih, py::handle w_hh, py::handle w_hr, bool linear_before_reset) {
        return is_double("w_ih", w_ih) ? pack<double>(w_ih, w_hh, w_hr, linear_before_reset)
                                       : pack<float>(w_ih, w_hh, w_hr, linear_before_reset);
      },
      py::arg("w_ih"), py::arg("w_hh"), py::arg("w_hr") = py::none(),
      py::arg("linear_before_reset") = true);
}

}  // namespace fusedrnn::bind
