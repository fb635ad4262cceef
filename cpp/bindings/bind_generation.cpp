#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "inferspeed/generation.hpp"
#include "inferspeed/generation_load.hpp"

namespace py = pybind11;

namespace inferspeed::bindings {

namespace {

// A field of a cache tensor given as a tuple (the dataclass's field order), a dict, or an
// object with attributes (inferspeed.facts.decoder.CacheTensor).
py::object field(const py::handle& item, const char* name, size_t index) {
  if (py::isinstance<py::tuple>(item) || py::isinstance<py::list>(item)) {
    const auto seq = py::reinterpret_borrow<py::sequence>(item);
    if (seq.size() != 6) {
      throw std::invalid_argument("a cache tensor tuple has 6 fields: past, present, element_code, shape, "
                                  "batch_axis, seq_axis");
    }
    return seq[index];
  }
  if (py::isinstance<py::dict>(item)) return py::reinterpret_borrow<py::dict>(item)[name];
  return item.attr(name);
}

std::vector<CacheTensorSpec> to_caches(const py::sequence& caches) {
  std::vector<CacheTensorSpec> out;
  for (const py::handle item : caches) {
    CacheTensorSpec c;
    c.past = field(item, "past", 0).cast<std::string>();
    c.present = field(item, "present", 1).cast<std::string>();
    c.element_type = field(item, "element_code", 2).cast<int>();
    c.shape = field(item, "shape", 3).cast<std::vector<int64_t>>();
    c.batch_axis = field(item, "batch_axis", 4).cast<int>();
    c.seq_axis = field(item, "seq_axis", 5).cast<int>();
    out.push_back(std::move(c));
  }
  return out;
}

// ONNX element type of a numpy dtype (0: none that an input takes here).
int element_code(const py::dtype& dtype) {
  const char kind = dtype.kind();
  const auto size = dtype.itemsize();
  if (kind == 'b') return 9;
  if (kind == 'f') return size == 4 ? 1 : size == 2 ? 10 : size == 8 ? 11 : 0;
  if (kind == 'i') return size == 1 ? 3 : size == 2 ? 5 : size == 4 ? 6 : size == 8 ? 7 : 0;
  if (kind == 'u') return size == 1 ? 2 : size == 2 ? 4 : size == 4 ? 12 : size == 8 ? 13 : 0;
  return 0;
}

// Length inputs as objects with attributes (inferspeed.facts.decoder.LengthInput) or tuples
// (name, element_code, shape, batch_axis or None, offset).
std::vector<LengthInputSpec> to_lengths(const py::sequence& items) {
  std::vector<LengthInputSpec> out;
  for (const py::handle item : items) {
    auto get = [&](const char* name, size_t index) -> py::object {
      if (py::isinstance<py::tuple>(item) || py::isinstance<py::list>(item)) {
        const auto seq = py::reinterpret_borrow<py::sequence>(item);
        if (seq.size() != 5) {
          throw std::invalid_argument("a length input tuple has 5 fields: name, element_code, shape, batch_axis, "
                                      "offset");
        }
        return seq[index];
      }
      return item.attr(name);
    };
    LengthInputSpec x;
    x.name = get("name", 0).cast<std::string>();
    x.element_type = get("element_code", 1).cast<int>();
    x.shape = get("shape", 2).cast<std::vector<int64_t>>();
    const py::object axis = get("batch_axis", 3);
    x.batch_axis = axis.is_none() ? -1 : axis.cast<int>();
    x.offset = get("offset", 4).cast<int64_t>();
    out.push_back(std::move(x));
  }
  return out;
}

std::vector<FixedInput> to_fixed(const py::object& mapping) {
  std::vector<FixedInput> out;
  const py::object ascontiguous = py::module_::import("numpy").attr("ascontiguousarray");
  for (const py::handle pair : mapping.attr("items")()) {
    const auto kv = py::reinterpret_borrow<py::tuple>(pair);
    const auto array = ascontiguous(kv[1]).cast<py::array>();
    FixedInput x;
    x.name = kv[0].cast<std::string>();
    x.element_type = element_code(array.dtype());
    if (x.element_type == 0) throw std::invalid_argument("extra input '" + x.name + "' has an unsupported dtype");
    for (py::ssize_t d = 0; d < array.ndim(); ++d) x.shape.push_back(static_cast<int64_t>(array.shape(d)));
    const auto* bytes = static_cast<const unsigned char*>(array.data());
    x.data.assign(bytes, bytes + array.nbytes());
    out.push_back(std::move(x));
  }
  return out;
}

void set_prompt(GenerationSpec& spec, const py::array& prompt_ids) {
  if (prompt_ids.ndim() != 2) throw std::invalid_argument("prompt_ids must be a [batch, prompt tokens] array");
  const char kind = prompt_ids.dtype().kind();
  if (kind != 'i' && kind != 'u') throw std::invalid_argument("prompt_ids must hold integers");
  const auto ids = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(prompt_ids);
  spec.batch = static_cast<int64_t>(ids.shape(0));
  spec.prompt_tokens = static_cast<int64_t>(ids.shape(1));
  spec.prompt_ids.assign(ids.data(), ids.data() + ids.size());
}

// A vector as a numpy array of `shape` without copying (the array owns it).
template <class T>
py::array_t<T> shaped(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(std::move(shape), owned->data(), free_when_done);
}

py::dict result_to_dict(GenerationResult&& r) {
  const auto reps = static_cast<py::ssize_t>(r.repetitions);
  const auto g = static_cast<py::ssize_t>(r.gen_tokens);
  const auto caches = static_cast<py::ssize_t>(r.buffer_addresses.size() / 2);
  const auto warmups = static_cast<py::ssize_t>(r.warmup_ns.size());
  py::dict d;
  d["step_ns"] = shaped(std::move(r.step_ns), {reps, g});
  d["sample_ns"] = shaped(std::move(r.sample_ns), {reps, g});
  d["tokens"] = shaped(std::move(r.tokens), {reps, static_cast<py::ssize_t>(r.batch), g});
  d["generation_ns"] = shaped(std::move(r.generation_ns), {reps});
  d["warmup_ns"] = shaped(std::move(r.warmup_ns), {warmups});
  d["repetitions"] = r.repetitions;
  d["last_steps"] = r.last_steps;
  d["start_ns"] = r.start_ns;
  d["end_ns"] = r.end_ns;
  d["interrupted"] = r.interrupted;
  d["capped"] = r.capped;
  d["prefill_logits_shape"] = r.prefill_logits_shape;
  d["decode_logits_shape"] = r.decode_logits_shape;
  d["preallocated_outputs"] = r.preallocated_outputs;
  d["buffer_addresses"] = shaped(std::move(r.buffer_addresses), {caches, 2});
  d["present_addresses"] = shaped(std::move(r.present_addresses), {reps, caches});
  d["cache_bytes"] = r.cache_bytes;
  return d;
}

// The spec from the arguments Session.generate and Session.generation share.
GenerationSpec make_spec(const std::string& input_ids, int ids_code, const std::optional<std::string>& attention_mask,
                         int mask_code, const std::optional<std::string>& position_ids, int position_code,
                         const std::optional<std::string>& cache_position,
                         const std::optional<std::string>& use_cache_branch, const py::sequence& caches,
                         const std::string& logits, std::optional<int64_t> vocab, bool share_buffer,
                         std::optional<int64_t> max_length, int64_t prefill_past, const py::object& extra_inputs,
                         const py::sequence& lengths, const py::array& prompt_ids, int64_t gen_tokens) {
  GenerationSpec spec;
  spec.input_ids = input_ids;
  spec.ids_type = ids_code;
  spec.attention_mask = attention_mask.value_or("");
  spec.mask_type = mask_code;
  spec.position_ids = position_ids.value_or("");
  spec.position_type = position_code;
  spec.cache_position = cache_position.value_or("");
  spec.use_cache_branch = use_cache_branch.value_or("");
  spec.caches = to_caches(caches);
  spec.logits = logits;
  spec.vocab = vocab.value_or(0);
  spec.share_buffer = share_buffer;
  spec.max_length = max_length.value_or(0);
  spec.prefill_past = prefill_past;
  spec.extra_inputs = to_fixed(extra_inputs);
  spec.lengths = to_lengths(lengths);
  set_prompt(spec, prompt_ids);
  spec.gen_tokens = gen_tokens;
  return spec;
}

// A Generation of a Python session: the session object is kept alive (and its `busy` lock
// held while a run goes on).
struct PyGeneration {
  py::object owner;  // the PySession
  PySession* session;
  std::unique_ptr<Generation> generation;
};

// The streams of a generation load, all of one Python session (returned: it is held while
// they run).
PySession& streams_session(const std::vector<PyGeneration*>& streams, std::vector<Generation*>& out) {
  if (streams.empty()) throw std::invalid_argument("at least one stream (a Generation) is needed");
  for (PyGeneration* g : streams) {
    if (g == nullptr) throw std::invalid_argument("a stream is None");
    if (g->session != streams.front()->session) {
      throw std::invalid_argument("every stream must be a Generation of the same session");
    }
    for (const Generation* seen : out) {
      if (seen == g->generation.get()) throw std::invalid_argument("a Generation is given twice: one per stream");
    }
    out.push_back(g->generation.get());
  }
  return *streams.front()->session;
}

py::dict load_to_dict(GenerationLoadResult&& r) {
  const auto n = static_cast<py::ssize_t>(r.start_ns.size());
  const auto g = static_cast<py::ssize_t>(r.gen_tokens);
  py::dict d;
  d["start_ns"] = shaped(std::move(r.start_ns), {n});
  d["token_ns"] = shaped(std::move(r.token_ns), {n, g});
  d["step_ns"] = shaped(std::move(r.step_ns), {n, g});
  d["tokens"] = shaped(std::move(r.tokens), {n, static_cast<py::ssize_t>(r.batch), g});
  d["stream"] = shaped(std::move(r.stream), {n});
  d["waited"] = shaped(std::move(r.waited), {n});
  d["origin_ns"] = r.origin_ns;
  d["ready_ns"] = r.ready_ns;
  d["interrupted"] = r.interrupted;
  return d;
}

// _core.generation_load: generation requests served by several streams (Generations of one
// session) at once.
void register_generation_load(py::module_& m) {
  m.def(
      "generation_load",
      [](const std::vector<PyGeneration*>& streams, const std::vector<int64_t>& arrivals_ns, int64_t spin_ns,
         int64_t chunk_ns, int64_t stop_after_ns, const std::vector<int64_t>& prompt_tokens,
         const std::vector<int64_t>& gen_tokens) {
        std::vector<Generation*> raw;
        PySession& owner = streams_session(streams, raw);
        GenerationLoadSpec spec{arrivals_ns, prompt_tokens, gen_tokens, spin_ns, chunk_ns, stop_after_ns};
        GenerationLoadResult r;
        {
          const InUse in_use(owner);
          py::gil_scoped_release release;
          r = run_generation_load(*owner.session, raw, spec, python_signals_ok);
        }
        return load_to_dict(std::move(r));
      },
      py::arg("streams"), py::arg("arrivals_ns"), py::kw_only(), py::arg("spin_ns") = 200'000,
      py::arg("chunk_ns") = 20'000'000, py::arg("stop_after_ns") = 0,
      py::arg("prompt_tokens") = std::vector<int64_t>(), py::arg("gen_tokens") = std::vector<int64_t>(),
      "Generation requests under load: request i arrives arrivals_ns[i] after the start; each is\n"
      "one whole generation, served by the first free stream (a Generation of one session, each\n"
      "run once before; a thread each, the GIL released). With stop_after_ns > 0 no request starts\n"
      "after that long. prompt_tokens and gen_tokens (one each per request, within the streams'\n"
      "own lengths; empty: the streams') give each request's prompt (the first ids of each row)\n"
      "and output tokens. Returns start_ns [requests], token_ns and step_ns [requests, gen_tokens]\n"
      "(ns after the start; -1 not run, or beyond the request's tokens), tokens [requests, batch,\n"
      "gen_tokens], stream and waited [requests], origin_ns, ready_ns and interrupted.");
}

#define INFERSPEED_SPEC_ARGS                                                                                         \
  py::kw_only(), py::arg("input_ids"), py::arg("ids_code") = 7, py::arg("attention_mask") = py::none(),              \
      py::arg("mask_code") = 7, py::arg("position_ids") = py::none(), py::arg("position_code") = 7,                  \
      py::arg("cache_position") = py::none(), py::arg("use_cache_branch") = py::none(), py::arg("caches"),            \
      py::arg("logits"), py::arg("vocab") = py::none(), py::arg("share_buffer") = false,                             \
      py::arg("max_length") = py::none(), py::arg("prefill_past") = 0, py::arg("extra_inputs") = py::dict(),         \
      py::arg("lengths") = py::tuple(), py::arg("prompt_ids"), py::arg("gen_tokens")

}  // namespace

void register_generation(py::module_& m) {
  py::class_<PyGeneration>(m, "Generation")
      .def(
          "run",
          [](PyGeneration& g, int64_t warmup, int64_t max_repetitions, int64_t max_ns) {
            GenerationResult r;
            {
              const InUse in_use(*g.session);
              py::gil_scoped_release release;
              r = g.generation->run(warmup, max_repetitions, max_ns, python_signals_ok);
            }
            return result_to_dict(std::move(r));
          },
          py::kw_only(), py::arg("warmup") = 0, py::arg("max_repetitions") = 0, py::arg("max_ns") = 0,
          "`warmup` generations not kept, then repetitions until max_repetitions or max_ns (the GIL\n"
          "released); the same dict as Session.generate. The output buffers learned in this\n"
          "Generation's first whole generation serve every later run.")
      .def_property_readonly(
          "prompt_tokens", [](const PyGeneration& g) { return g.generation->prompt_tokens(); },
          "The prompt's tokens (the most a request under load may take).")
      .def_property_readonly(
          "gen_tokens", [](const PyGeneration& g) { return g.generation->gen_tokens(); },
          "Tokens each generation outputs (the most a request under load may take).");
  auto session = py::reinterpret_borrow<py::class_<PySession>>(m.attr("Session"));
  session.def(
      "generation",
      [](py::object self, const std::string& input_ids, int ids_code, const std::optional<std::string>& attention_mask,
         int mask_code, const std::optional<std::string>& position_ids, int position_code,
         const std::optional<std::string>& cache_position, const std::optional<std::string>& use_cache_branch,
         const py::sequence& caches, const std::string& logits, std::optional<int64_t> vocab, bool share_buffer,
         std::optional<int64_t> max_length, int64_t prefill_past, const py::object& extra_inputs,
         const py::sequence& lengths, const py::array& prompt_ids, int64_t gen_tokens) {
        GenerationSpec spec = make_spec(input_ids, ids_code, attention_mask, mask_code, position_ids, position_code,
                                        cache_position, use_cache_branch, caches, logits, vocab, share_buffer,
                                        max_length, prefill_past, extra_inputs, lengths, prompt_ids, gen_tokens);
        spec.max_repetitions = 1;  // checked now; each run gives its own limits
        auto out = std::make_unique<PyGeneration>();
        out->owner = self;
        out->session = &self.cast<PySession&>();
        {
          const InUse in_use(*out->session);
          out->generation = std::make_unique<Generation>(*out->session->session, std::move(spec));
        }
        return out;
      },
      INFERSPEED_SPEC_ARGS,
      "A Generation of this session with a KV-cache decoder (the arguments as Session.generate's,\n"
      "without the limits): set up once, run many times (Generation.run).");
  session.def(
      "generate",
      [](PySession& s, const std::string& input_ids, int ids_code, const std::optional<std::string>& attention_mask,
         int mask_code, const std::optional<std::string>& position_ids, int position_code,
         const std::optional<std::string>& cache_position, const std::optional<std::string>& use_cache_branch,
         const py::sequence& caches, const std::string& logits, std::optional<int64_t> vocab, bool share_buffer,
         std::optional<int64_t> max_length, int64_t prefill_past, const py::object& extra_inputs,
         const py::sequence& lengths, const py::array& prompt_ids, int64_t gen_tokens, int64_t warmup,
         int64_t max_repetitions, int64_t max_ns) {
        GenerationSpec spec = make_spec(input_ids, ids_code, attention_mask, mask_code, position_ids, position_code,
                                        cache_position, use_cache_branch, caches, logits, vocab, share_buffer,
                                        max_length, prefill_past, extra_inputs, lengths, prompt_ids, gen_tokens);
        spec.warmup = warmup;
        spec.max_repetitions = max_repetitions;
        spec.max_ns = max_ns;
        GenerationResult r;
        {
          const InUse in_use(s);
          py::gil_scoped_release release;
          r = generate(*s.session, spec, python_signals_ok);
        }
        return result_to_dict(std::move(r));
      },
      INFERSPEED_SPEC_ARGS, py::arg("warmup") = 1, py::arg("max_repetitions") = 0, py::arg("max_ns") = 0,
      "Greedy generation with a KV-cache decoder, timed step by step in C++ (the GIL released).\n"
      "The arguments before prompt_ids are DecoderSpec's fields (caches: CacheTensors, or their fields\n"
      "as tuples or dicts); prompt_ids [batch, prompt tokens]; gen_tokens per generation (step 0, the\n"
      "prefill, chooses the first); `warmup` generations not kept, then repetitions until\n"
      "max_repetitions or max_ns. Returns step_ns and sample_ns [reps, gen_tokens], tokens [reps,\n"
      "batch, gen_tokens], generation_ns [reps], warmup_ns, repetitions, last_steps, start_ns, end_ns,\n"
      "interrupted, capped, the logits shapes, preallocated_outputs, buffer_addresses [caches, 2],\n"
      "present_addresses [reps, caches] and cache_bytes.");
  register_generation_load(m);
}

#undef INFERSPEED_SPEC_ARGS

}  // namespace inferspeed::bindings
