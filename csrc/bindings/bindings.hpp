// Registration functions of the pybind11 module, one per file.
#pragma once

#include <pybind11/pybind11.h>

namespace fusedrnn::bind {
void bind_lstm(pybind11::module_& m);
void bind_gru(pybind11::module_& m);
void bind_packed(pybind11::module_& m);
}  // namespace fusedrnn::bind
