// fusedrnn._core: the CPU kernels for Python. The package's Python layer is the public API.
#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "fusedrnn/fusedrnn.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "fusedrnn CPU kernels (private: use the fusedrnn package)";
  fusedrnn::bind::bind_lstm(m);
  fusedrnn::bind::bind_gru(m);
  fusedrnn::bind::bind_packed(m);
  m.def("set_num_threads", &fusedrnn::set_num_threads, pybind11::arg("n"));
  m.def("get_num_threads", &fusedrnn::get_num_threads);
  m.def("cpu_simd_level", &fusedrnn::cpu_simd_level);
  m.def("blas_info", &fusedrnn::blas_info);
  m.def("empty_cache", &fusedrnn::empty_cache);
  // Hidden, for tests: the buffer cache's contents, bound and poisoning.
  m.def("_cached_bytes", &fusedrnn::cached_bytes);
  m.def("_cache_limit", &fusedrnn::cache_limit);
  m.def("_poison_cache", &fusedrnn::poison_cache);
  // Hidden, for tests: the time loops' take-over patience (ns; < 0: the default).
  m.def("_set_take_over_patience", &fusedrnn::set_take_over_patience, pybind11::arg("ns"));
  // Hidden, for tests: delays a worker's joining of a two-thread time loop (ns; 0: none).
  m.def("_set_join_delay", &fusedrnn::set_join_delay, pybind11::arg("ns"));
  // Hidden, for tests: delays a worker after each part it claims in a time loop (ns; 0: none).
  m.def("_set_claim_delay", &fusedrnn::set_claim_delay, pybind11::arg("ns"));
  // Hidden diagnostics for bench/compare.py: the arithmetic peak, FLOP/s.
  m.def("_fma_peak", &fusedrnn::fma_peak_flops, pybind11::arg("seconds") = 0.2,
        pybind11::arg("threads") = 0, pybind11::call_guard<pybind11::gil_scoped_release>());
  // Hidden diagnostics for bench/ceiling.py: the rate, bytes/s, of streaming `bytes` of weights
  // split among the threads.
  m.def("_stream_read_rate", &fusedrnn::stream_read_rate, pybind11::arg("bytes"),
        pybind11::arg("seconds") = 0.2, pybind11::arg("threads") = 0,
        pybind11::call_guard<pybind11::gil_scoped_release>());
}
