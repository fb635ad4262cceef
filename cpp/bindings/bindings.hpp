// Registration functions of the _core module; each bind_*.cpp maps one part of the core.
#pragma once

#include <pybind11/pybind11.h>

namespace inferspeed::bindings {

void register_errors(pybind11::module_& m);
void register_runtime(pybind11::module_& m);
void register_session(pybind11::module_& m);
void register_callable(pybind11::module_& m);

}  // namespace inferspeed::bindings
