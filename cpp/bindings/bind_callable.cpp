// Timing any Python callable in the C++ loop (inferspeed.timeit): a trampoline makes one
// vectorcall per call, with the GIL held (Python code needs it); the clock reads are C++'s.
#include <pybind11/pybind11.h>

#include <memory>
#include <vector>

#include "bindings.hpp"
#include "inferspeed/loops.hpp"

namespace py = pybind11;

namespace inferspeed::bindings {

namespace {

// One prepared call: the callable, positional arguments then keyword values, and the
// keyword names (a tuple, or nullptr).
struct PreparedCall {
  PyObject* fn = nullptr;
  std::vector<PyObject*> args;
  size_t positional = 0;
  PyObject* kwnames = nullptr;
};

bool call_once(void* context) {
  auto* c = static_cast<PreparedCall*>(context);
  PyObject* r = PyObject_Vectorcall(c->fn, c->args.data(), c->positional, c->kwnames);
  if (r == nullptr) return false;
  Py_DECREF(r);
  return true;
}

}  // namespace

void register_callable(py::module_& m) {
  m.def(
      "time_callable",
      [](const py::function& fn, const py::tuple& args, const py::dict& kwargs, int64_t max_iterations,
         int64_t max_ns, int64_t chunk_ns, int64_t batch) {
        PreparedCall call;
        call.fn = fn.ptr();
        for (const py::handle a : args) call.args.push_back(a.ptr());
        call.positional = call.args.size();
        py::tuple names(kwargs.size());
        size_t k = 0;
        for (const auto& item : kwargs) {
          names[k++] = item.first;
          call.args.push_back(item.second.ptr());
        }
        if (kwargs.size() > 0) call.kwnames = names.ptr();
        CallableSpec spec{max_iterations, max_ns, chunk_ns, batch};
        bool failed = false;
        LoopResult r = callable_loop(call_once, &call, spec, python_signals_ok, &failed);
        if (failed) throw py::error_already_set();
        return loop_result_to_dict(std::move(r));
      },
      py::arg("fn"), py::arg("args") = py::tuple(), py::arg("kwargs") = py::dict(), py::arg("max_iterations") = 0,
      py::arg("max_ns") = 0, py::arg("chunk_ns") = 20'000'000, py::arg("batch") = 1,
      "Time fn(*args, **kwargs) in a C++ closed loop, `batch` calls per pair of clock reads;\n"
      "returns samples_ns (int64 numpy, per batch), start_ns, end_ns, interrupted. An exception\n"
      "raised by fn propagates.");
}

}  // namespace inferspeed::bindings
