// fusedrnn._cuda: the CUDA kernels for Python. fusedrnn/cuda.py checks every argument, allocates
// the outputs and the workspace with the caller's own array library, and passes a dict of sizes,
// flags and raw device pointers (integers; 0 for an absent array). This file only reads that
// dict, releases the GIL and calls the core; no CUDA header is needed here.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "api.hpp"

namespace py = pybind11;
using namespace fusedrnn;
using fusedrnn::cuda::Context;
using fusedrnn::cuda::DType;

namespace {

int64_t int_arg(const py::dict& a, const char* key) { return a[key].cast<int64_t>(); }
bool flag(const py::dict& a, const char* key) { return a[key].cast<bool>(); }

// A device pointer passed as an integer; 0 (or a missing key) is null.
void* ptr(const py::dict& a, const char* key) {
  if (!a.contains(key)) return nullptr;
  return reinterpret_cast<void*>(static_cast<uintptr_t>(a[key].cast<uint64_t>()));
}

DType dtype(const py::dict& a) { return static_cast<DType>(int_arg(a, "dtype")); }

Context context(const py::dict& a) {
  Context c;
  c.device = static_cast<int>(int_arg(a, "device"));
  c.stream = ptr(a, "stream");
  c.workspace = ptr(a, "workspace");
  c.workspace_bytes = a.contains("workspace_bytes") ? a["workspace_bytes"].cast<size_t>() : 0;
  return c;
}

LstmProblem<void> lstm_problem(const py::dict& a) {
  LstmProblem<void> p;
  p.steps = int_arg(a, "T"), p.batch = int_arg(a, "B"), p.input = int_arg(a, "I");
  p.hidden = int_arg(a, "H"), p.proj = int_arg(a, "P");
  p.x = ptr(a, "x"), p.w_ih = ptr(a, "w_ih"), p.w_hh = ptr(a, "w_hh");
  p.b_ih = ptr(a, "b_ih"), p.b_hh = ptr(a, "b_hh"), p.w_hr = ptr(a, "w_hr");
  p.lengths = static_cast<const int64_t*>(ptr(a, "lengths"));
  p.reverse = flag(a, "reverse");
  return p;
}

GruProblem<void> gru_problem(const py::dict& a) {
  GruProblem<void> p;
  p.steps = int_arg(a, "T"), p.batch = int_arg(a, "B"), p.input = int_arg(a, "I");
  p.hidden = int_arg(a, "H");
  p.x = ptr(a, "x"), p.w_ih = ptr(a, "w_ih"), p.w_hh = ptr(a, "w_hh");
  p.b_ih = ptr(a, "b_ih"), p.b_hh = ptr(a, "b_hh");
  p.lengths = static_cast<const int64_t*>(ptr(a, "lengths"));
  p.reverse = flag(a, "reverse"), p.linear_before_reset = flag(a, "linear_before_reset");
  return p;
}

void call_lstm_forward(const py::dict& a) {
  const auto p = lstm_problem(a);
  LstmSaved<void> saved;
  saved.gates = ptr(a, "gates"), saved.c_prev = ptr(a, "c_prev"), saved.h_prev = ptr(a, "h_prev");
  const bool training = flag(a, "training");
  const auto dt = dtype(a);
  const auto ctx = context(a);
  void *y = ptr(a, "y"), *hn = ptr(a, "hn"), *cn = ptr(a, "cn");
  const void *h0 = ptr(a, "h0"), *c0 = ptr(a, "c0");
  py::gil_scoped_release nogil;
  cuda::lstm_forward(dt, p, h0, c0, y, hn, cn, training ? &saved : nullptr, ctx);
}

void call_lstm_backward(const py::dict& a) {
  const auto p = lstm_problem(a);
  LstmSaved<void> saved;
  saved.gates = ptr(a, "gates"), saved.c_prev = ptr(a, "c_prev"), saved.h_prev = ptr(a, "h_prev");
  LstmGrads<void> g;
  g.dx = ptr(a, "dx"), g.dh0 = ptr(a, "dh0"), g.dc0 = ptr(a, "dc0");
  g.dw_ih = ptr(a, "dw_ih"), g.dw_hh = ptr(a, "dw_hh");
  g.db_ih = ptr(a, "db_ih"), g.db_hh = ptr(a, "db_hh"), g.dw_hr = ptr(a, "dw_hr");
  const auto dt = dtype(a);
  const auto ctx = context(a);
  const void *dy = ptr(a, "dy"), *dhn = ptr(a, "dhn"), *dcn = ptr(a, "dcn");
  py::gil_scoped_release nogil;
  cuda::lstm_backward(dt, p, saved, dy, dhn, dcn, g, ctx);
}

void call_gru_forward(const py::dict& a) {
  const auto p = gru_problem(a);
  GruSaved<void> saved;
  saved.gates = ptr(a, "gates"), saved.h_prev = ptr(a, "h_prev");
  const bool training = flag(a, "training");
  const auto dt = dtype(a);
  const auto ctx = context(a);
  void *y = ptr(a, "y"), *hn = ptr(a, "hn");
  const void* h0 = ptr(a, "h0");
  py::gil_scoped_release nogil;
  cuda::gru_forward(dt, p, h0, y, hn, training ? &saved : nullptr, ctx);
}

void call_gru_backward(const py::dict& a) {
  const auto p = gru_problem(a);
  GruSaved<void> saved;
  saved.gates = ptr(a, "gates"), saved.h_prev = ptr(a, "h_prev");
  GruGrads<void> g;
  g.dx = ptr(a, "dx"), g.dh0 = ptr(a, "dh0"), g.dw_ih = ptr(a, "dw_ih");
  g.dw_hh = ptr(a, "dw_hh"), g.db_ih = ptr(a, "db_ih"), g.db_hh = ptr(a, "db_hh");
  const auto dt = dtype(a);
  const auto ctx = context(a);
  const void *dy = ptr(a, "dy"), *dhn = ptr(a, "dhn");
  py::gil_scoped_release nogil;
  cuda::gru_backward(dt, p, saved, dy, dhn, g, ctx);
}

}  // namespace

#ifndef FUSEDRNN_CUDA_MODULE
#define FUSEDRNN_CUDA_MODULE _cuda  // tests/cuda_emulation builds _cuda_emulated from this file
#endif

PYBIND11_MODULE(FUSEDRNN_CUDA_MODULE, m) {
  m.doc() = "fusedrnn CUDA kernels (private: use the fusedrnn package)";
  m.def("lstm_forward_workspace", [](const py::dict& a) {
    return cuda::lstm_forward_workspace_bytes(dtype(a), lstm_problem(a), flag(a, "training"));
  });
  m.def("lstm_backward_workspace", [](const py::dict& a) {
    return cuda::lstm_backward_workspace_bytes(dtype(a), lstm_problem(a));
  });
  m.def("gru_forward_workspace", [](const py::dict& a) {
    return cuda::gru_forward_workspace_bytes(dtype(a), gru_problem(a), flag(a, "training"));
  });
  m.def("gru_backward_workspace", [](const py::dict& a) {
    return cuda::gru_backward_workspace_bytes(dtype(a), gru_problem(a));
  });
  m.def("lstm_forward", &call_lstm_forward);
  m.def("lstm_backward", &call_lstm_backward);
  m.def("gru_forward", &call_gru_forward);
  m.def("gru_backward", &call_gru_backward);
  m.def("device_count", &cuda::device_count);
  m.def("device_name", &cuda::device_name, py::arg("device"));
  m.def("runtime_info", &cuda::runtime_info);
  m.def("persistent_launch_count", &cuda::persistent_launch_count);
}
