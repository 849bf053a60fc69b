// Python entry points of the GRU kernels: check, allocate, release the GIL, call the core.
#include "bindings.hpp"

#include "checks.hpp"
#include "fusedrnn/fusedrnn.hpp"
#include "packed.hpp"
#include "saved.hpp"

namespace fusedrnn::bind {
namespace {

template <typename T>
py::tuple forward(py::handle x_obj, py::handle w_ih_obj, py::handle w_hh_obj,
                  py::handle b_ih_obj, py::handle b_hh_obj, py::handle h0_obj,
                  py::handle lengths_obj, bool reverse, bool linear_before_reset,
                  bool training, int threads, py::handle out, py::handle packed) {
  const auto xs = shape_of("x", x_obj, 3, "(T, B, I)");
  const int64_t T_ = xs[0], B = xs[1], I = xs[2];
  const auto whh = shape_of("w_hh", w_hh_obj, 2, "(3*H, H)");
  if (whh[0] % 3 != 0)
    throw py::value_error("w_hh: expected shape (3*H, H) with a first dimension divisible by 3, "
                          "got " + shape_str(whh));
  const int64_t H = whh[0] / 3;
  GruProblem<T> p;
  p.steps = T_, p.batch = B, p.input = I, p.hidden = H;
  check_sizes(p);  // from the shapes alone, before anything is copied or allocated

  auto x = take<T>("x", x_obj, {{"T", T_}, {"B", B}, {"I", I}});
  auto w_ih = take<T>("w_ih", w_ih_obj, {{"3*H", 3 * H}, {"I", I}});
  auto w_hh = take<T>("w_hh", w_hh_obj, {{"3*H", 3 * H}, {"H", H}});
  auto b_ih = take_optional<T>("b_ih", b_ih_obj, {{"3*H", 3 * H}});
  auto b_hh = take_optional<T>("b_hh", b_hh_obj, {{"3*H", 3 * H}});
  auto h0 = take_optional<T>("h0", h0_obj, {{"B", B}, {"H", H}});
  auto lengths = take_lengths(lengths_obj, B);
  p.x = x.data(), p.w_ih = w_ih.data(), p.w_hh = w_hh.data();
  p.b_ih = ptr(b_ih), p.b_hh = ptr(b_hh);
  p.lengths = ptr(lengths), p.reverse = reverse, p.linear_before_reset = linear_before_reset;
  p.threads = threads;
  p.packed = packed_of<T>(packed);

  auto y = output<T>("out[0] (y)", out_item(out, 2, 0, "(y, hn)"), {{"T", T_}, {"B", B}, {"H", H}});
  auto hn = output<T>("out[1] (hn)", out_item(out, 2, 1, "(y, hn)"), {{"B", B}, {"H", H}});

  py::object saved_obj = py::none();
  GruSaved<T> saved;
  if (training) {
    GruSavedState st;
    st.is_double = std::is_same_v<T, double>;
    st.steps = T_, st.batch = B, st.input = I, st.hidden = H;
    st.reverse = reverse, st.linear_before_reset = linear_before_reset;
    st.x = x, st.w_ih = w_ih, st.w_hh = w_hh;
    st.b_ih = b_ih ? py::object(*b_ih) : py::none();
    st.b_hh = b_hh ? py::object(*b_hh) : py::none();
    st.lengths = lengths ? py::object(*lengths) : py::none();
    st.gates = fresh<T>({T_, B, gru_saved_width(linear_before_reset, H)});
    st.h_prev = fresh<T>({T_, B, H});
    saved.gates = mutable_data_of<T>(st.gates);
    saved.h_prev = mutable_data_of<T>(st.h_prev);
    saved_obj = py::cast(std::move(st));
  }
  {
    py::gil_scoped_release nogil;
    gru_forward<T>(p, ptr(h0), y.mutable_data(), hn.mutable_data(), training ? &saved : nullptr);
  }
  return py::make_tuple(y, hn, saved_obj);
}

template <typename T>
py::tuple backward(const GruSavedState& st, py::handle dy_obj, py::handle dhn_obj,
                   int threads) {
  const int64_t T_ = st.steps, B = st.batch, I = st.input, H = st.hidden;
  auto dy = take<T>("dy", dy_obj, {{"T", T_}, {"B", B}, {"H", H}});
  auto dhn = take_optional<T>("dhn", dhn_obj, {{"B", B}, {"H", H}});

  GruProblem<T> p;
  p.steps = T_, p.batch = B, p.input = I, p.hidden = H;
  p.x = data_of<T>(st.x), p.w_ih = data_of<T>(st.w_ih), p.w_hh = data_of<T>(st.w_hh);
  p.b_ih = data_or_null<T>(st.b_ih), p.b_hh = data_or_null<T>(st.b_hh);
  p.lengths = data_or_null<int64_t>(st.lengths), p.reverse = st.reverse;
  p.linear_before_reset = st.linear_before_reset, p.threads = threads;
  GruSaved<T> saved;
  saved.gates = const_cast<T*>(data_of<T>(st.gates));  // read only in backward
  saved.h_prev = const_cast<T*>(data_of<T>(st.h_prev));

  auto dx = fresh<T>({T_, B, I}), dh0 = fresh<T>({B, H});
  auto dw_ih = fresh<T>({3 * H, I}), dw_hh = fresh<T>({3 * H, H});
  py::object db_ih = py::none(), db_hh = py::none();
  GruGrads<T> g;
  g.dx = dx.mutable_data(), g.dh0 = dh0.mutable_data();
  g.dw_ih = dw_ih.mutable_data(), g.dw_hh = dw_hh.mutable_data();
  if (!st.b_ih.is_none()) {
    auto a = fresh<T>({3 * H});
    g.db_ih = a.mutable_data();
    db_ih = a;
  }
  if (!st.b_hh.is_none()) {
    auto a = fresh<T>({3 * H});
    g.db_hh = a.mutable_data();
    db_hh = a;
  }
  {
    py::gil_scoped_release nogil;
    gru_backward<T>(p, saved, dy.data(), ptr(dhn), g);
  }
  return py::make_tuple(dx, dh0, dw_ih, dw_hh, db_ih, db_hh);
}

}  // namespace

void bind_gru(py::module_& m) {
  py::class_<GruSavedState>(m, "GruSaved",
                            "What gru_backward needs from a training gru_forward (opaque).")
      .def_property_readonly("steps", [](const GruSavedState& s) { return s.steps; })
      .def_property_readonly("batch", [](const GruSavedState& s) { return s.batch; })
      .def_property_readonly("output_size", [](const GruSavedState& s) { return s.hidden; })
      .def("__repr__", [](const GruSavedState& s) {
        return "<fusedrnn GruSaved T=" + std::to_string(s.steps) +
               " B=" + std::to_string(s.batch) + " H=" + std::to_string(s.hidden) +
               (s.is_double ? " float64>" : " float32>");
      });

  m.def(
      "gru_forward",
      [](py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih, py::handle b_hh,
         py::handle h0, py::handle lengths, bool reverse, bool linear_before_reset,
         bool training, int threads, py::handle out, py::handle packed) {
        return is_double("x", x) ? forward<double>(x, w_ih, w_hh, b_ih, b_hh, h0, lengths,
                                                   reverse, linear_before_reset, training,
                                                   threads, out, packed)
                                 : forward<float>(x, w_ih, w_hh, b_ih, b_hh, h0, lengths,
                                                  reverse, linear_before_reset, training,
                                                  threads, out, packed);
      },
      py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("h0"), py::arg("lengths"), py::arg("reverse"), py::arg("linear_before_reset"),
      py::arg("training"), py::arg("threads") = 0, py::arg("out") = py::none(),
      py::arg("packed") = py::none());

  m.def(
      "gru_backward",
      [](const GruSavedState& st, py::handle dy, py::handle dhn, int threads) {
        return st.is_double ? backward<double>(st, dy, dhn, threads)
                            : backward<float>(st, dy, dhn, threads);
      },
      py::arg("saved"), py::arg("dy"), py::arg("dhn"), py::arg("threads") = 0);
}

}  // namespace fusedrnn::bind
