#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "inferspeed/clock.hpp"
#include "inferspeed/error.hpp"
#include "inferspeed/probe.hpp"
#include "inferspeed/runtime.hpp"

namespace py = pybind11;

namespace inferspeed::bindings {

void register_errors(py::module_& m) {
  // The exception classes live in Python (inferspeed.errors) so they can carry attributes and
  // be documented there; this translates the core's C++ exceptions into them.
  py::module_ errors = py::module_::import("inferspeed.errors");
  m.attr("OrtError") = errors.attr("OrtError");
  m.attr("RuntimeLoadError") = errors.attr("RuntimeLoadError");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const OrtError& e) {
      py::object cls = py::module_::import("inferspeed.errors").attr("OrtError");
      py::object exc = cls(e.what(), e.code());
      PyErr_SetObject(cls.ptr(), exc.ptr());
    } catch (const RuntimeLoadError& e) {
      py::object cls = py::module_::import("inferspeed.errors").attr("RuntimeLoadError");
      PyErr_SetString(cls.ptr(), e.what());
    } catch (const SessionInUse& e) {
      py::object cls = py::module_::import("inferspeed.errors").attr("SessionInUseError");
      PyErr_SetString(cls.ptr(), e.what());
    }
  });
}

void register_runtime(py::module_& m) {
  py::class_<Runtime, std::shared_ptr<Runtime>>(m, "Runtime")
      .def_static("load", &Runtime::load, py::arg("library_path"), py::arg("log_level") = 4,
                  py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("path", &Runtime::path)
      .def_property_readonly("version", &Runtime::version)
      .def_property_readonly_static("api_version", [](const py::object&) { return Runtime::api_version(); })
      .def("available_providers", &Runtime::available_providers);

  m.attr("build_ort_include_dir") = INFERSPEED_ORT_INCLUDE_DIR;
  m.def("now_ns", &now_ns, "The core's clock (CLOCK_MONOTONIC) in nanoseconds.");
  m.def(
      "measure_clock",
      [](int64_t pairs) {
        const ClockInfo info = [&] {
          py::gil_scoped_release release;
          return measure_clock(pairs);
        }();
        py::dict d;
        d["overhead_ns"] = info.overhead_ns;
        d["min_delta_ns"] = info.min_delta_ns;
        d["resolution_ns"] = info.resolution_ns;
        d["samples"] = info.samples;
        return d;
      },
      py::arg("pairs") = 200000, "Measure the clock's own overhead and resolution.");
  m.def(
      "speed_probe",
      [](int64_t repeats) {
        std::vector<int64_t> times = [&] {
          py::gil_scoped_release release;
          return speed_probe(repeats);
        }();
        return to_numpy(std::move(times));
      },
      py::arg("repeats") = 5,
      "Time `repeats` runs of the machine-speed probe, a fixed compute-bound workload (GIL\n"
      "released); int64 numpy array of nanoseconds, one per run.");
  m.attr("PROBE_STEPS") = kProbeSteps;
}

}  // namespace inferspeed::bindings
