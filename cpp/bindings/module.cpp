#include <pybind11/pybind11.h>

#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "inferspeed's measurement core: ONNX Runtime sessions and timed loops in C++.";
  m.attr("__version__") = INFERSPEED_VERSION;
  inferspeed::bindings::register_errors(m);
  inferspeed::bindings::register_runtime(m);
  inferspeed::bindings::register_session(m);
  inferspeed::bindings::register_callable(m);
  inferspeed::bindings::register_generation(m);
}
