// Registration functions of the _core module; each bind_*.cpp maps one part of the core.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

namespace inferspeed::bindings {

void register_errors(pybind11::module_& m);
void register_runtime(pybind11::module_& m);
void register_session(pybind11::module_& m);
void register_callable(pybind11::module_& m);

/// Move a vector into a numpy array without copying (the array owns it).
template <class T>
pybind11::array_t<T> to_numpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  pybind11::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return pybind11::array_t<T>({static_cast<pybind11::ssize_t>(owned->size())}, {sizeof(T)}, owned->data(),
                              free_when_done);
}

}  // namespace inferspeed::bindings
