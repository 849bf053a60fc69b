// Python entry points of the LSTM kernels: check, allocate, release the GIL, call the core.
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
                  py::handle c0_obj, py::handle w_hr_obj, py::handle lengths_obj, bool reverse,
                  bool training, int threads, py::handle out, py::handle packed) {
  const auto xs = shape_of("x", x_obj, 3, "(T, B, I)");
  const int64_t T_ = xs[0], B = xs[1], I = xs[2];
  const auto whh = shape_of("w_hh", w_hh_obj, 2, "(4*H, P)");
  if (whh[0] % 4 != 0)
    throw py::value_error("w_hh: expected shape (4*H, P) with a first dimension divisible by 4, "
                          "got " + shape_str(whh));
  const int64_t H = whh[0] / 4;
  int64_t P = H;
  if (!w_hr_obj.is_none()) P = shape_of("w_hr", w_hr_obj, 2, "(P, H)")[0];

  const char* out_name = w_hr_obj.is_none() ? "H" : "P";  // the size of h and y
  LstmProblem<T> p;
  p.steps = T_, p.batch = B, p.input = I, p.hidden = H, p.proj = P;
  check_sizes(p);  // from the shapes alone, before anything is copied or allocated

  auto x = take<T>("x", x_obj, {{"T", T_}, {"B", B}, {"I", I}});
  auto w_ih = take<T>("w_ih", w_ih_obj, {{"4*H", 4 * H}, {"I", I}});
  auto w_hh = take<T>("w_hh", w_hh_obj, {{"4*H", 4 * H}, {out_name, P}});
  auto b_ih = take_optional<T>("b_ih", b_ih_obj, {{"4*H", 4 * H}});
  auto b_hh = take_optional<T>("b_hh", b_hh_obj, {{"4*H", 4 * H}});
  auto w_hr = take_optional<T>("w_hr", w_hr_obj, {{"P", P}, {"H", H}});
  auto h0 = take_optional<T>("h0", h0_obj, {{"B", B}, {out_name, P}});
  auto c0 = take_optional<T>("c0", c0_obj, {{"B", B}, {"H", H}});
  auto lengths = take_lengths(lengths_obj, B);
  p.x = x.data(), p.w_ih = w_ih.data(), p.w_hh = w_hh.data();
  p.b_ih = ptr(b_ih), p.b_hh = ptr(b_hh), p.w_hr = ptr(w_hr);
  p.lengths = ptr(lengths), p.reverse = reverse, p.threads = threads;
  p.packed = packed_of<T>(packed);

  const char* form = "(y, hn, cn)";
  auto y = output<T>("out[0] (y)", out_item(out, 3, 0, form), {{"T", T_}, {"B", B}, {out_name, P}});
  auto hn = output<T>("out[1] (hn)", out_item(out, 3, 1, form), {{"B", B}, {out_name, P}});
  auto cn = output<T>("out[2] (cn)", out_item(out, 3, 2, form), {{"B", B}, {"H", H}});

  py::object saved_obj = py::none();
  LstmSaved<T> saved;
  if (training) {
    LstmSavedState st;
    st.is_double = std::is_same_v<T, double>;
    st.steps = T_, st.batch = B, st.input = I, st.hidden = H, st.proj = P, st.reverse = reverse;
    st.x = x, st.w_ih = w_ih, st.w_hh = w_hh;
    st.b_ih = b_ih ? py::object(*b_ih) : py::none();
    st.b_hh = b_hh ? py::object(*b_hh) : py::none();
    st.w_hr = w_hr ? py::object(*w_hr) : py::none();
    st.lengths = lengths ? py::object(*lengths) : py::none();
    st.gates = fresh<T>({T_, B, 4 * H});
    st.c_prev = fresh<T>({T_, B, H});
    st.h_prev = fresh<T>({T_, B, P});
    saved.gates = mutable_data_of<T>(st.gates);
    saved.c_prev = mutable_data_of<T>(st.c_prev);
    saved.h_prev = mutable_data_of<T>(st.h_prev);
    saved_obj = py::cast(std::move(st));
  }
  {
    py::gil_scoped_release nogil;
    lstm_forward<T>(p, ptr(h0), ptr(c0), y.mutable_data(), hn.mutable_data(), cn.mutable_data(),
                    training ? &saved : nullptr);
  }
  return py::make_tuple(y, hn, cn, saved_obj);
}

template <typename T>
py::tuple backward(const LstmSavedState& st, py::handle dy_obj, py::handle dhn_obj,
                   py::handle dcn_obj, int threads) {
  const int64_t T_ = st.steps, B = st.batch, I = st.input, H = st.hidden, P = st.proj;
  const char* out = st.w_hr.is_none() ? "H" : "P";
  auto dy = take<T>("dy", dy_obj, {{"T", T_}, {"B", B}, {out, P}});
  auto dhn = take_optional<T>("dhn", dhn_obj, {{"B", B}, {out, P}});
  auto dcn = take_optional<T>("dcn", dcn_obj, {{"B", B}, {"H", H}});

  LstmProblem<T> p;
  p.steps = T_, p.batch = B, p.input = I, p.hidden = H, p.proj = P;
  p.x = data_of<T>(st.x), p.w_ih = data_of<T>(st.w_ih), p.w_hh = data_of<T>(st.w_hh);
  p.b_ih = data_or_null<T>(st.b_ih), p.b_hh = data_or_null<T>(st.b_hh);
  p.w_hr = data_or_null<T>(st.w_hr);
  p.lengths = data_or_null<int64_t>(st.lengths), p.reverse = st.reverse, p.threads = threads;
  LstmSaved<T> saved;
  // The core only reads the saved block in backward.
  saved.gates = const_cast<T*>(data_of<T>(st.gates));
  saved.c_prev = const_cast<T*>(data_of<T>(st.c_prev));
  saved.h_prev = const_cast<T*>(data_of<T>(st.h_prev));

  auto dx = fresh<T>({T_, B, I}), dh0 = fresh<T>({B, P}), dc0 = fresh<T>({B, H});
  auto dw_ih = fresh<T>({4 * H, I}), dw_hh = fresh<T>({4 * H, P});
  py::object db_ih = py::none(), db_hh = py::none(), dw_hr = py::none();
  LstmGrads<T> g;
  g.dx = dx.mutable_data(), g.dh0 = dh0.mutable_data(), g.dc0 = dc0.mutable_data();
  g.dw_ih = dw_ih.mutable_data(), g.dw_hh = dw_hh.mutable_data();
  if (!st.b_ih.is_none()) {
    auto a = fresh<T>({4 * H});
    g.db_ih = a.mutable_data();
    db_ih = a;
  }
  if (!st.b_hh.is_none()) {
    auto a = fresh<T>({4 * H});
    g.db_hh = a.mutable_data();
    db_hh = a;
  }
  if (!st.w_hr.is_none()) {
    auto a = fresh<T>({P, H});
    g.dw_hr = a.mutable_data();
    dw_hr = a;
  }
  {
    py::gil_scoped_release nogil;
    lstm_backward<T>(p, saved, dy.data(), ptr(dhn), ptr(dcn), g);
  }
  return py::make_tuple(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr);
}

}  // namespace

void bind_lstm(py::module_& m) {
  py::class_<LstmSavedState>(m, "LstmSaved",
                             "What lstm_backward needs from a training lstm_forward (opaque).")
      .def_property_readonly("steps", [](const LstmSavedState& s) { return s.steps; })
      .def_property_readonly("batch", [](const LstmSavedState& s) { return s.batch; })
      .def_property_readonly("output_size", [](const LstmSavedState& s) { return s.proj; })
      .def("__repr__", [](const LstmSavedState& s) {
        return "<fusedrnn LstmSaved T=" + std::to_string(s.steps) +
               " B=" + std::to_string(s.batch) + " H=" + std::to_string(s.hidden) +
               (s.is_double ? " float64>" : " float32>");
      });

  m.def(
      "lstm_forward",
      [](py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih, py::handle b_hh,
         py::handle h0, py::handle c0, py::handle w_hr, py::handle lengths, bool reverse,
         bool training, int threads, py::handle out, py::handle packed) {
        return is_double("x", x)
                   ? forward<double>(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, lengths, reverse,
                                     training, threads, out, packed)
                   : forward<float>(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, lengths, reverse,
                                    training, threads, out, packed);
      },
      py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("h0"), py::arg("c0"), py::arg("w_hr"), py::arg("lengths"), py::arg("reverse"),
      py::arg("training"), py::arg("threads") = 0, py::arg("out") = py::none(),
      py::arg("packed") = py::none());

  m.def(
      "lstm_backward",
      [](const LstmSavedState& st, py::handle dy, py::handle dhn, py::handle dcn, int threads) {
        return st.is_double ? backward<double>(st, dy, dhn, dcn, threads)
                            : backward<float>(st, dy, dhn, dcn, threads);
      },
      py::arg("saved"), py::arg("dy"), py::arg("dhn"), py::arg("dcn"), py::arg("threads") = 0);
}

}  // namespace fusedrnn::bind
