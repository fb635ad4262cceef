#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "inferspeed/counted.hpp"
#include "inferspeed/flush.hpp"
#include "inferspeed/loops.hpp"
#include "inferspeed/scenarios.hpp"
#include "inferspeed/session.hpp"

namespace py = pybind11;

namespace inferspeed::bindings {

namespace {

py::dict value_info_to_dict(const ValueInfo& v) {
  py::dict d;
  d["name"] = v.name;
  d["kind"] = static_cast<int>(v.kind);
  d["element_type"] = v.element_type;
  d["shape"] = v.shape;
  d["symbolic"] = v.symbolic;
  d["key_type"] = v.key_type;
  d["inner"] = v.inner.empty() ? py::object(py::none()) : py::object(value_info_to_dict(v.inner.front()));
  return d;
}

// A numpy array as one tensor of a sequence or map: its memory (kept alive by the caller) or,
// for element type string, its items as text.
TensorPart tensor_part(const py::array& array, int element_type, std::vector<int64_t> shape) {
  TensorPart part;
  part.element_type = element_type;
  part.shape = std::move(shape);
  if (element_type == 8) {  // ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING
    for (const py::handle item : array.attr("ravel")()) part.strings.push_back(py::str(item));
    return part;
  }
  if (!(array.flags() & py::array::c_style)) throw std::invalid_argument("input arrays must be C-contiguous");
  part.data = const_cast<void*>(array.data());
  part.nbytes = static_cast<size_t>(array.nbytes());
  return part;
}

py::list value_infos(const std::vector<ValueInfo>& values) {
  py::list out;
  for (const ValueInfo& v : values) out.append(value_info_to_dict(v));
  return out;
}

SessionConfig make_config(int intra, int inter, int opt_level, bool parallel, bool arena, bool mem_pattern,
                          std::string profile_prefix, std::vector<std::pair<std::string, std::string>> entries,
                          std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> providers) {
  SessionConfig c;
  c.intra_op_threads = intra;
  c.inter_op_threads = inter;
  c.graph_optimization_level = opt_level;
  c.parallel_execution = parallel;
  c.cpu_mem_arena = arena;
  c.mem_pattern = mem_pattern;
  c.profile_prefix = std::move(profile_prefix);
  c.config_entries = std::move(entries);
  for (auto& [name, options] : providers) c.providers.push_back(ProviderSpec{name, std::move(options)});
  return c;
}

// `count` workers of the session, worker k on input set k mod (number of sets).
std::vector<std::unique_ptr<Worker>> make_workers(Session& session, int count) {
  if (count < 1) throw std::invalid_argument("concurrency must be at least 1");
  std::vector<std::unique_ptr<Worker>> workers;
  for (int k = 0; k < count; ++k) {
    workers.push_back(session.make_worker(static_cast<size_t>(k) % session.input_set_count()));
  }
  return workers;
}

std::vector<Worker*> raw(const std::vector<std::unique_ptr<Worker>>& workers) {
  std::vector<Worker*> out;
  for (const auto& w : workers) out.push_back(w.get());
  return out;
}

}  // namespace

void register_session(py::module_& m) {
  py::enum_<CallMode>(m, "CallMode").value("binding", CallMode::binding).value("run", CallMode::run);

  py::class_<PySession>(m, "Session")
      .def(py::init([](const std::shared_ptr<Runtime>& runtime, const std::string& model_path, int intra_op_threads,
                       int inter_op_threads, int graph_optimization_level, bool parallel_execution,
                       bool cpu_mem_arena, bool mem_pattern, std::string profile_prefix,
                       std::vector<std::pair<std::string, std::string>> config_entries,
                       std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> providers) {
             SessionConfig config = make_config(intra_op_threads, inter_op_threads, graph_optimization_level,
                                                parallel_execution, cpu_mem_arena, mem_pattern,
                                                std::move(profile_prefix), std::move(config_entries),
                                                std::move(providers));
             py::gil_scoped_release release;
             auto s = std::make_unique<PySession>();
             s->session = std::make_unique<Session>(runtime, model_path, config);
             return s;
           }),
           py::arg("runtime"), py::arg("model_path"), py::kw_only(), py::arg("intra_op_threads") = 0,
           py::arg("inter_op_threads") = 0, py::arg("graph_optimization_level") = 99,
           py::arg("parallel_execution") = false, py::arg("cpu_mem_arena") = true, py::arg("mem_pattern") = true,
           py::arg("profile_prefix") = std::string(),
           py::arg("config_entries") = std::vector<std::pair<std::string, std::string>>{},
           py::arg("providers") =
               std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>>{})
      .def_property_readonly("inputs", [](const PySession& s) { return value_infos(s.session->inputs()); })
      .def(
          "end_profiling",
          [](PySession& s) {
            const InUse in_use(s);
            py::gil_scoped_release release;
            return s.session->end_profiling();
          },
          "End ONNX Runtime profiling and return the trace file's path ('' when not profiling).")
      .def_property_readonly("outputs", [](const PySession& s) { return value_infos(s.session->outputs()); })
      .def(
          "set_input_set_count",
          [](PySession& s, size_t count) {
            const InUse in_use(s);
            s.session->set_input_set_count(count);
            s.keep_alive.clear();
          },
          py::arg("count"), "Use `count` input sets, cycled through by the loops; drops bound inputs.")
      .def_property_readonly("input_set_count", [](const PySession& s) { return s.session->input_set_count(); })
      .def(
          "bind_input",
          [](PySession& s, const std::string& name, const py::array& array, int element_type,
             const std::vector<int64_t>& shape, size_t set) {
            if (!(array.flags() & py::array::c_style)) throw std::invalid_argument("input arrays must be C-contiguous");
            const InUse in_use(s);
            s.session->bind_input(set, name, element_type, shape, const_cast<void*>(array.data()),
                                  static_cast<size_t>(array.nbytes()));
            s.keep_alive.push_back(array);
          },
          py::arg("name"), py::arg("array"), py::arg("element_type"), py::arg("shape"), py::arg("set") = 0,
          "Bind a C-contiguous array's memory as input `name` of input set `set` (ONNX element type\n"
          "and logical shape given; packed 4-bit types have fewer bytes than elements), without copying.")
      .def(
          "bind_string_input",
          [](PySession& s, const std::string& name, const std::vector<int64_t>& shape,
             const std::vector<std::string>& values,
             size_t set) {
            const InUse in_use(s);
            s.session->bind_string_input(set, name, shape, values);
          },
          py::arg("name"), py::arg("shape"), py::arg("values"), py::arg("set") = 0)
      .def(
          "bind_sequence_input",
          [](PySession& s, const std::string& name, const std::vector<py::array>& arrays, int element_type,
             const std::vector<int64_t>& shape, size_t set) {
            std::vector<TensorPart> parts;
            for (const py::array& a : arrays) parts.push_back(tensor_part(a, element_type, shape));
            const InUse in_use(s);
            s.session->bind_sequence_input(set, name, parts);
            for (const py::array& a : arrays) s.keep_alive.push_back(a);
          },
          py::arg("name"), py::arg("arrays"), py::arg("element_type"), py::arg("shape"), py::arg("set") = 0,
          "Bind a sequence of tensors, one per array (each of ONNX element type `element_type` and\n"
          "shape `shape`; object arrays for strings), as input `name` of input set `set`.")
      .def(
          "bind_map_input",
          [](PySession& s, const std::string& name, const py::array& keys, const py::array& values, int key_type,
             int value_type, size_t set) {
            const std::vector<int64_t> length{static_cast<int64_t>(keys.size())};
            if (values.size() != keys.size()) throw std::invalid_argument("a map needs as many values as keys");
            const TensorPart key_part = tensor_part(keys, key_type, length);
            const TensorPart value_part = tensor_part(values, value_type, length);
            const InUse in_use(s);
            s.session->bind_map_input(set, name, key_part, value_part);
            s.keep_alive.push_back(keys);
            s.keep_alive.push_back(values);
          },
          py::arg("name"), py::arg("keys"), py::arg("values"), py::arg("key_type"), py::arg("value_type"),
          py::arg("set") = 0,
          "Bind a map of `keys` to `values` (1-D arrays of the same length; ONNX element types\n"
          "given; object arrays for strings) as input `name` of input set `set`.")
      .def(
          "prepare",
          [](PySession& s) {
            const InUse in_use(s);
            py::gil_scoped_release release;
            s.session->prepare();
          },
          "Run once, preallocate and bind the outputs.")
      .def_property_readonly(
          "busy",
          [](PySession& s) {
            std::unique_lock<std::mutex> lock(s.busy, std::try_to_lock);
            return !lock.owns_lock();
          },
          "True while a loop (or any other call) of another thread uses the session.")
      .def_property_readonly("outputs_preallocated", [](const PySession& s) { return s.session->outputs_preallocated(); })
      .def_property_readonly("binding_usable", [](const PySession& s) { return s.session->binding_usable(); })
      .def_property_readonly("binding_error", [](const PySession& s) { return s.session->binding_error(); })
      .def_property_readonly("create_ns", [](const PySession& s) { return s.session->create_ns(); })
      .def_property_readonly("first_run_ns", [](const PySession& s) { return s.session->first_run_ns(); })
      .def_property_readonly("untimed_calls", [](const PySession& s) { return s.session->untimed_calls(); })
      .def(
          "closed_loop",
          [](PySession& s, CallMode mode, int64_t max_iterations, int64_t max_ns, int64_t chunk_ns,
             CacheFlusher* flusher) {
            LoopSpec spec{mode, max_iterations, max_ns, chunk_ns, flusher};
            LoopResult r;
            {
              const InUse in_use(s);
              py::gil_scoped_release release;
              r = closed_loop(*s.session, spec, python_signals_ok);
            }
            return loop_result_to_dict(std::move(r));
          },
          py::arg("mode"), py::arg("max_iterations") = 0, py::arg("max_ns") = 0, py::arg("chunk_ns") = 20'000'000,
          py::arg("flusher") = nullptr,
          "Closed loop: time calls back to back (evicting the caches before each with `flusher`);\n"
          "returns samples_ns (int64 numpy), start_ns, end_ns, interrupted.")
      .def(
          "counted_calls",
          [](PySession& s, CallMode mode, int64_t warmup, int64_t calls, bool client_requests) {
            CountedResult r;
            {
              const InUse in_use(s);
              py::gil_scoped_release release;
              r = counted_calls(*s.session, CountedSpec{mode, warmup, calls, client_requests});
            }
            py::dict d;
            d["ns"] = r.ns;
            d["client_requests"] = r.client_requests;
            return d;
          },
          py::arg("mode"), py::arg("warmup"), py::arg("calls"), py::arg("client_requests") = true,
          "Calls for Valgrind's Callgrind to count (the instruction-count metric): `warmup` calls,\n"
          "then `calls` calls, each collected alone and dumped (with client requests), or each\n"
          "through inferspeed_counted_call; returns ns (each counted call's wall time) and\n"
          "client_requests.");

  m.def("callgrind_client_requests", &callgrind_client_requests,
        "Whether this build has Callgrind's client requests (valgrind/callgrind.h was found).");
  m.def("running_on_valgrind", &running_on_valgrind, "Whether this process runs under Valgrind.");
  m.def("cpu_extensions", &cpu_extensions,
        "Instruction-set extensions the CPU reports to this process (under Valgrind: its emulated CPU's).");

  m.def(
      "run_server",
      [](PySession& s, CallMode mode, const std::vector<int64_t>& arrivals_ns, int concurrency, int64_t spin_ns,
         int64_t chunk_ns) {
        ServerSpec spec{mode, arrivals_ns, spin_ns, chunk_ns};
        ServerResult r;
        {
          const InUse in_use(s);
          py::gil_scoped_release release;
          auto workers = make_workers(*s.session, concurrency);
          r = run_server(*s.session, raw(workers), spec, python_signals_ok);
        }
        py::dict d;
        d["origin_ns"] = r.origin_ns;
        d["ready_ns"] = r.ready_ns;
        d["interrupted"] = r.interrupted;
        d["start_ns"] = to_numpy(std::move(r.start_ns));
        d["end_ns"] = to_numpy(std::move(r.end_ns));
        d["worker"] = to_numpy(std::move(r.worker));
        d["waited"] = to_numpy(std::move(r.waited));
        return d;
      },
      py::arg("session"), py::arg("mode"), py::arg("arrivals_ns"), py::arg("concurrency"),
      py::arg("spin_ns") = 200'000, py::arg("chunk_ns") = 20'000'000,
      "Server scenario: requests at the given arrival offsets, `concurrency` worker threads.\n"
      "Returns per-request start_ns/end_ns (-1: not run), worker, waited, origin_ns and ready_ns\n"
      "(when every worker thread was running).");
  m.def(
      "run_offline",
      [](PySession& s, CallMode mode, int64_t duration_ns, int concurrency, int64_t expected_per_worker,
         int64_t chunk_ns) {
        OfflineSpec spec{mode, duration_ns, chunk_ns, expected_per_worker};
        OfflineResult r;
        {
          const InUse in_use(s);
          py::gil_scoped_release release;
          auto workers = make_workers(*s.session, concurrency);
          r = run_offline(*s.session, raw(workers), spec, python_signals_ok);
        }
        py::list starts;
        py::list ends;
        for (auto& v : r.start_ns) starts.append(to_numpy(std::move(v)));
        for (auto& v : r.end_ns) ends.append(to_numpy(std::move(v)));
        py::dict d;
        d["origin_ns"] = r.origin_ns;
        d["elapsed_ns"] = r.elapsed_ns;
        d["interrupted"] = r.interrupted;
        d["start_ns"] = starts;
        d["end_ns"] = ends;
        return d;
      },
      py::arg("session"), py::arg("mode"), py::arg("duration_ns"), py::arg("concurrency"),
      py::arg("expected_per_worker") = 0, py::arg("chunk_ns") = 20'000'000,
      "Offline scenario: `concurrency` workers back to back for `duration_ns`; per-worker\n"
      "lists of start_ns/end_ns arrays, elapsed_ns, origin_ns.");

  py::class_<CacheFlusher>(m, "CacheFlusher")
      .def(py::init([](size_t bytes, size_t line_bytes, bool every_cpu) {
             py::gil_scoped_release release;
             return std::make_unique<CacheFlusher>(bytes, line_bytes, every_cpu);
           }),
           py::arg("bytes"), py::arg("line_bytes") = 0, py::arg("every_cpu") = true,
           "A buffer of `bytes` whose walk evicts the CPU caches; with `every_cpu`, a helper thread on\n"
           "each CPU of the affinity mask also evicts that core's private caches at each flush.")
      .def_property_readonly("cpus", &CacheFlusher::cpus)
      .def_property_readonly("private_bytes", &CacheFlusher::private_bytes)
      .def("flush", &CacheFlusher::flush, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("bytes", &CacheFlusher::bytes)
      .def_property_readonly("line_bytes", &CacheFlusher::line_bytes);
}

}  // namespace inferspeed::bindings
