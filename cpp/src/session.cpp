#include "inferspeed/session.hpp"

#include <strings.h>

#include <cstring>

#include "inferspeed/clock.hpp"
#include "inferspeed/error.hpp"

namespace inferspeed {

namespace {

// Names the user writes ("CUDAExecutionProvider") -> names the generic append call takes ("CUDA").
std::string short_provider_name(const std::string& name) {
  const std::string suffix = "ExecutionProvider";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return name.substr(0, name.size() - suffix.size());
  }
  return name;
}

// The names SessionOptionsAppendExecutionProvider takes, which it compares case-sensitively:
// "Azure" (AzureExecutionProvider less its suffix) must be given as "AZURE".
std::string generic_provider_name(const std::string& short_name) {
  static const char* const known[] = {"DML",   "QNN", "OpenVINO", "SNPE",   "XNNPACK", "WEBNN",
                                      "WebGPU", "AZURE", "JS",     "VitisAI", "CoreML", "MIGraphX"};
  for (const char* k : known) {
    if (strcasecmp(k, short_name.c_str()) == 0) return k;
  }
  return short_name;
}

struct KeyValues {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  explicit KeyValues(const std::vector<std::pair<std::string, std::string>>& kv) {
    for (const auto& [k, v] : kv) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
  }
};

}  // namespace

std::string Session::end_profiling() {
  if (!profiling_) return {};
  profiling_ = false;
  OrtAllocator* allocator = nullptr;
  rt_->check(api_->GetAllocatorWithDefaultOptions(&allocator));
  char* path = nullptr;
  rt_->check(api_->SessionEndProfiling(session_.get(), allocator, &path));
  std::string owned(path != nullptr ? path : "");
  if (path != nullptr) rt_->check(api_->AllocatorFree(allocator, path));
  return owned;
}

Session::Session(std::shared_ptr<Runtime> runtime, const std::string& model_path,
                 const SessionConfig& config)
    : rt_(std::move(runtime)),
      api_(&rt_->api()),
      options_(api_->ReleaseSessionOptions),
      session_(api_->ReleaseSession),
      run_options_(api_->ReleaseRunOptions),
      cpu_memory_(api_->ReleaseMemoryInfo) {
  const Runtime& rt = *rt_;
  rt.check(api_->CreateSessionOptions(options_.out()));
  OrtSessionOptions* so = options_.get();
  if (config.intra_op_threads > 0) rt.check(api_->SetIntraOpNumThreads(so, config.intra_op_threads));
  if (config.inter_op_threads > 0) rt.check(api_->SetInterOpNumThreads(so, config.inter_op_threads));
  rt.check(api_->SetSessionGraphOptimizationLevel(
      so, static_cast<GraphOptimizationLevel>(config.graph_optimization_level)));
  rt.check(api_->SetSessionExecutionMode(so, config.parallel_execution ? ORT_PARALLEL : ORT_SEQUENTIAL));
  if (!config.cpu_mem_arena) rt.check(api_->DisableCpuMemArena(so));
  if (!config.mem_pattern) rt.check(api_->DisableMemPattern(so));
  if (!config.profile_prefix.empty()) {
    profiling_ = true;
    rt.check(api_->EnableProfiling(so, config.profile_prefix.c_str()));
  }
  for (const auto& [key, value] : config.config_entries) {
    rt.check(api_->AddSessionConfigEntry(so, key.c_str(), value.c_str()));
  }
  for (const ProviderSpec& provider : config.providers) {
    const std::string name = short_provider_name(provider.name);
    KeyValues kv(provider.options);
    if (name == "CPU") {
      continue;  // always present, and always the last resort
    } else if (name == "CUDA") {
      OrtCUDAProviderOptionsV2* cuda = nullptr;
      rt.check(api_->CreateCUDAProviderOptions(&cuda));
      OrtStatus* st = api_->UpdateCUDAProviderOptions(cuda, kv.keys.data(), kv.values.data(), kv.keys.size());
      if (st == nullptr) st = api_->SessionOptionsAppendExecutionProvider_CUDA_V2(so, cuda);
      api_->ReleaseCUDAProviderOptions(cuda);
      rt.check(st);
    } else if (name == "Tensorrt" || name == "TensorRT") {
      OrtTensorRTProviderOptionsV2* trt = nullptr;
      rt.check(api_->CreateTensorRTProviderOptions(&trt));
      OrtStatus* st = api_->UpdateTensorRTProviderOptions(trt, kv.keys.data(), kv.values.data(), kv.keys.size());
      if (st == nullptr) st = api_->SessionOptionsAppendExecutionProvider_TensorRT_V2(so, trt);
      api_->ReleaseTensorRTProviderOptions(trt);
      rt.check(st);
    } else {
      rt.check(api_->SessionOptionsAppendExecutionProvider(so, generic_provider_name(name).c_str(), kv.keys.data(),
                                                           kv.values.data(), kv.keys.size()));
    }
  }

  const int64_t t0 = now_ns();
  rt.check(api_->CreateSession(rt.env(), model_path.c_str(), so, session_.out()));
  create_ns_ = now_ns() - t0;

  rt.check(api_->CreateRunOptions(run_options_.out()));
  rt.check(api_->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, cpu_memory_.out()));

  OrtAllocator* allocator = nullptr;
  rt.check(api_->GetAllocatorWithDefaultOptions(&allocator));
  auto read_values = [&](bool is_input, std::vector<ValueInfo>& into) {
    size_t count = 0;
    rt.check(is_input ? api_->SessionGetInputCount(session_.get(), &count)
                      : api_->SessionGetOutputCount(session_.get(), &count));
    for (size_t i = 0; i < count; ++i) {
      char* name = nullptr;
      rt.check(is_input ? api_->SessionGetInputName(session_.get(), i, allocator, &name)
                        : api_->SessionGetOutputName(session_.get(), i, allocator, &name));
      std::string owned(name);
      rt.check(api_->AllocatorFree(allocator, name));
      detail::Handle<OrtTypeInfo> type_info(api_->ReleaseTypeInfo);
      rt.check(is_input ? api_->SessionGetInputTypeInfo(session_.get(), i, type_info.out())
                        : api_->SessionGetOutputTypeInfo(session_.get(), i, type_info.out()));
      into.push_back(describe(owned.c_str(), type_info.get()));
    }
  };
  read_values(true, inputs_);
  read_values(false, outputs_);
  for (const ValueInfo& v : inputs_) input_names_.push_back(v.name.c_str());
  for (const ValueInfo& v : outputs_) output_names_.push_back(v.name.c_str());
  run_outputs_.assign(outputs_.size(), nullptr);
  set_input_set_count(1);
}

Session::~Session() {
  for (OrtValue*& v : run_outputs_) {
    if (v != nullptr) api_->ReleaseValue(v);
    v = nullptr;
  }
  // The bindings refer to the input and output values: release them first.
  bindings_.clear();
}

void Session::set_input_set_count(size_t count) {
  if (count == 0) throw std::invalid_argument("there must be at least one input set");
  prepared_ = false;
  // Build the new sets aside and swap them in only when all exist: a failure leaves the
  // session as it was (and unprepared), never with pointers to released bindings.
  std::vector<detail::Handle<OrtIoBinding>> bindings;
  std::vector<std::vector<detail::Handle<OrtValue>>> values;
  std::vector<std::vector<const OrtValue*>> ptrs;
  for (size_t k = 0; k < count; ++k) {
    bindings.emplace_back(api_->ReleaseIoBinding);
    rt_->check(api_->CreateIoBinding(session_.get(), bindings.back().out()));
    values.emplace_back();
    for (size_t i = 0; i < inputs_.size(); ++i) values.back().emplace_back(api_->ReleaseValue);
    ptrs.emplace_back(inputs_.size(), nullptr);
  }
  std::vector<OrtIoBinding*> binding_ptrs;
  std::vector<const OrtValue* const*> arrays;
  for (size_t k = 0; k < count; ++k) {
    binding_ptrs.push_back(bindings[k].get());
    arrays.push_back(ptrs[k].data());  // the inner vectors' buffers survive the moves below
  }
  bindings_.swap(bindings);  // the old bindings go first: they refer to the old values
  bindings.clear();
  set_values_ = std::move(values);
  set_ptrs_ = std::move(ptrs);
  binding_ptrs_ = std::move(binding_ptrs);
  set_arrays_ = std::move(arrays);
}

void Session::check_set(size_t set) const {
  if (set >= bindings_.size()) {
    throw std::out_of_range("input set " + std::to_string(set) + " does not exist (there are " +
                            std::to_string(bindings_.size()) + ")");
  }
}

ValueInfo Session::describe(const char* name, const OrtTypeInfo* info, int depth) const {
  const Runtime& rt = *rt_;
  ValueInfo out;
  out.name = name;
  ONNXType type = ONNX_TYPE_UNKNOWN;
  rt.check(api_->GetOnnxTypeFromTypeInfo(info, &type));
  out.kind = static_cast<ValueKind>(type);
  if (type == ONNX_TYPE_TENSOR || type == ONNX_TYPE_SPARSETENSOR) {
    describe_tensor(info, out);
    return out;
  }
  if (depth > 8) return out;  // types nested deeper than any model needs: kind alone
  // What a sequence, map or optional holds: ORT hands out a type info of its own to release.
  detail::Handle<OrtTypeInfo> held(api_->ReleaseTypeInfo);
  if (type == ONNX_TYPE_SEQUENCE) {
    const OrtSequenceTypeInfo* seq = nullptr;
    rt.check(api_->CastTypeInfoToSequenceTypeInfo(info, &seq));
    if (seq != nullptr) rt.check(api_->GetSequenceElementType(seq, held.out()));
  } else if (type == ONNX_TYPE_MAP) {
    const OrtMapTypeInfo* map = nullptr;
    rt.check(api_->CastTypeInfoToMapTypeInfo(info, &map));
    if (map != nullptr) {
      ONNXTensorElementDataType key = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
      rt.check(api_->GetMapKeyType(map, &key));
      out.key_type = static_cast<int>(key);
      rt.check(api_->GetMapValueType(map, held.out()));
    }
  } else if (type == ONNX_TYPE_OPTIONAL) {
    const OrtOptionalTypeInfo* optional = nullptr;
    rt.check(api_->CastTypeInfoToOptionalTypeInfo(info, &optional));
    if (optional != nullptr) rt.check(api_->GetOptionalContainedTypeInfo(optional, held.out()));
  }
  if (held.get() != nullptr) out.inner.push_back(describe("", held.get(), depth + 1));
  return out;
}

void Session::describe_tensor(const OrtTypeInfo* info, ValueInfo& out) const {
  const Runtime& rt = *rt_;
  const OrtTensorTypeAndShapeInfo* tensor = nullptr;
  rt.check(api_->CastTypeInfoToTensorInfo(info, &tensor));
  if (tensor == nullptr) return;
  ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  rt.check(api_->GetTensorElementType(tensor, &element));
  out.element_type = static_cast<int>(element);
  size_t rank = 0;
  rt.check(api_->GetDimensionsCount(tensor, &rank));
  out.shape.assign(rank, -1);
  rt.check(api_->GetDimensions(tensor, out.shape.data(), rank));
  std::vector<const char*> symbols(rank, nullptr);
  rt.check(api_->GetSymbolicDimensions(tensor, symbols.data(), rank));
  for (size_t d = 0; d < rank; ++d) {
    out.symbolic.emplace_back(symbols[d] != nullptr ? symbols[d] : "");
    if (out.shape[d] < 0) out.shape[d] = -1;
  }
}

size_t Session::input_index(const std::string& name) const {
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (inputs_[i].name == name) return i;
  }
  throw std::invalid_argument("model has no input named '" + name + "'");
}

detail::Handle<OrtValue> Session::make_tensor(const TensorPart& part) const {
  detail::Handle<OrtValue> value(api_->ReleaseValue);
  if (part.element_type != ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) {
    rt_->check(api_->CreateTensorWithDataAsOrtValue(cpu_memory_.get(), part.data, part.nbytes, part.shape.data(),
                                                    part.shape.size(),
                                                    static_cast<ONNXTensorElementDataType>(part.element_type),
                                                    value.out()));
    return value;
  }
  OrtAllocator* allocator = nullptr;
  rt_->check(api_->GetAllocatorWithDefaultOptions(&allocator));
  rt_->check(api_->CreateTensorAsOrtValue(allocator, part.shape.data(), part.shape.size(),
                                          ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, value.out()));
  std::vector<const char*> c_strings;
  c_strings.reserve(part.strings.size());
  for (const std::string& s : part.strings) c_strings.push_back(s.c_str());
  rt_->check(api_->FillStringTensor(value.get(), c_strings.data(), c_strings.size()));
  return value;
}

void Session::bind_input(size_t set, const std::string& name, int element_type,
                         const std::vector<int64_t>& shape, void* data, size_t nbytes) {
  check_set(set);
  const size_t i = input_index(name);
  // Unprepared from here on, whatever happens: a loop must not run on a half-changed set.
  prepared_ = false;
  set_value(set, i, make_tensor(TensorPart{element_type, shape, data, nbytes, {}}));
}

void Session::bind_string_input(size_t set, const std::string& name, const std::vector<int64_t>& shape,
                                const std::vector<std::string>& values) {
  check_set(set);
  const size_t i = input_index(name);
  prepared_ = false;
  set_value(set, i, make_tensor(TensorPart{ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, shape, nullptr, 0, values}));
}

void Session::bind_sequence_input(size_t set, const std::string& name, const std::vector<TensorPart>& elements) {
  check_set(set);
  const size_t i = input_index(name);
  prepared_ = false;
  if (elements.empty()) throw std::invalid_argument("a sequence input needs at least one element");
  std::vector<detail::Handle<OrtValue>> parts;
  std::vector<const OrtValue*> ptrs;
  for (const TensorPart& part : elements) {
    parts.push_back(make_tensor(part));
    ptrs.push_back(parts.back().get());
  }
  detail::Handle<OrtValue> value(api_->ReleaseValue);
  rt_->check(api_->CreateValue(ptrs.data(), ptrs.size(), ONNX_TYPE_SEQUENCE, value.out()));
  set_value(set, i, std::move(value));
}

void Session::bind_map_input(size_t set, const std::string& name, const TensorPart& keys, const TensorPart& values) {
  check_set(set);
  const size_t i = input_index(name);
  prepared_ = false;
  detail::Handle<OrtValue> key_value = make_tensor(keys);
  detail::Handle<OrtValue> values_value = make_tensor(values);
  const OrtValue* parts[2] = {key_value.get(), values_value.get()};
  detail::Handle<OrtValue> value(api_->ReleaseValue);
  rt_->check(api_->CreateValue(parts, 2, ONNX_TYPE_MAP, value.out()));
  set_value(set, i, std::move(value));
}

void Session::set_value(size_t set, size_t i, detail::Handle<OrtValue>&& value) noexcept {
  // The binding of this set still holds the old value (ORT keeps its own reference) until
  // prepare() binds the new one; Run reads set_ptrs_, which never points at a released value.
  set_values_[set][i] = std::move(value);
  set_ptrs_[set][i] = set_values_[set][i].get();
}

void Session::bind_outputs(bool preallocated) {
  for (OrtIoBinding* binding : binding_ptrs_) {
    api_->ClearBoundOutputs(binding);
    for (size_t i = 0; i < outputs_.size(); ++i) {
      if (preallocated && output_numeric_[i]) {
        rt_->check(api_->BindOutput(binding, output_names_[i], output_values_[i].get()));
      } else {
        rt_->check(api_->BindOutputToDevice(binding, output_names_[i], cpu_memory_.get()));
      }
    }
  }
}

void Session::prepare() {
  const Runtime& rt = *rt_;
  prepared_ = false;
  // A terminate flag a Ctrl-C left on the run options would fail these calls.
  if (OrtStatus* st = api_->RunOptionsUnsetTerminate(run_options_.get())) api_->ReleaseStatus(st);
  for (size_t k = 0; k < set_ptrs_.size(); ++k) {
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (set_ptrs_[k][i] == nullptr) {
        throw std::invalid_argument("input '" + inputs_[i].name + "' has no value bound" +
                                    (set_ptrs_.size() > 1 ? " in input set " + std::to_string(k) : ""));
      }
    }
    api_->ClearBoundInputs(binding_ptrs_[k]);
    for (size_t i = 0; i < inputs_.size(); ++i) {
      rt.check(api_->BindInput(binding_ptrs_[k], input_names_[i], set_ptrs_[k][i]));
    }
  }

  // First (cold) run through Run: ORT allocates the outputs, which tells us their shapes.
  std::vector<OrtValue*> produced(outputs_.size(), nullptr);
  const int64_t t0 = now_ns();
  ++untimed_calls_;
  OrtStatus* status = api_->Run(session_.get(), run_options_.get(), input_names_.data(), set_ptrs_[0].data(),
                                inputs_.size(), output_names_.data(), outputs_.size(), produced.data());
  first_run_ns_ = now_ns() - t0;
  output_values_.clear();
  for (OrtValue* v : produced) {
    output_values_.emplace_back(api_->ReleaseValue);
    *output_values_.back().out() = v;
  }
  rt.check(status);

  // Reuse those very buffers as the preallocated outputs of every bound call. Values that are
  // not plain numeric tensors (sequences, maps, strings) are left to ORT to allocate.
  output_numeric_.assign(outputs_.size(), false);
  outputs_preallocated_ = true;
  for (size_t i = 0; i < outputs_.size(); ++i) {
    OrtValue* v = output_values_[i].get();
    int is_tensor = 0;
    if (v != nullptr) rt.check(api_->IsTensor(v, &is_tensor));
    if (is_tensor != 0) {
      detail::Handle<OrtTensorTypeAndShapeInfo> info(api_->ReleaseTensorTypeAndShapeInfo);
      rt.check(api_->GetTensorTypeAndShape(v, info.out()));
      ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
      rt.check(api_->GetTensorElementType(info.get(), &element));
      output_numeric_[i] = element != ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    }
    if (!output_numeric_[i]) outputs_preallocated_ = false;
  }
  // A model whose outputs do not match their declared rank (seen in real exports) rejects a
  // preallocated buffer when it is bound; so does one whose output shapes change from run to
  // run (or between input sets) when it runs: fall back to outputs that ORT allocates on each
  // bound call.
  bool preallocated = true;
  try {
    bind_outputs(true);
  } catch (const OrtError&) {
    preallocated = false;
    outputs_preallocated_ = false;
  }
  if (!preallocated) bind_outputs(false);
  auto run_every_binding = [&]() -> OrtStatus* {
    for (OrtIoBinding* binding : binding_ptrs_) {
      ++untimed_calls_;
      if (OrtStatus* st = api_->RunWithBinding(session_.get(), run_options_.get(), binding)) return st;
    }
    return nullptr;
  };
  status = run_every_binding();
  if (status != nullptr && preallocated) {
    api_->ReleaseStatus(status);
    bind_outputs(false);
    outputs_preallocated_ = false;
    preallocated = false;
    status = run_every_binding();
  }
  // A binding checks its outputs against their declared shapes, which some models break (a
  // string output longer than declared, an output of another rank) where Run, which just
  // succeeded, does not; a binding also keeps the outputs ORT allocated for it and hands them
  // to its next call as preallocated ones. Such a model can only be measured through Run.
  binding_usable_ = true;
  binding_error_.clear();
  if (status == nullptr && !(preallocated && outputs_preallocated_)) status = run_every_binding();
  if (status != nullptr) {
    binding_error_ = api_->GetErrorMessage(status);
    api_->ReleaseStatus(status);
    binding_usable_ = false;
    // Unless Run fails too on some input set: then that is the model's error, not the binding's.
    for (size_t k = 1; k < set_ptrs_.size(); ++k) rt.check(run_plain(k));
  }
  prepared_ = true;
}

OrtStatus* Session::run_plain(size_t set) {
  std::vector<OrtValue*> produced(outputs_.size(), nullptr);
  ++untimed_calls_;
  OrtStatus* status = api_->Run(session_.get(), run_options_.get(), input_names_.data(), set_ptrs_[set].data(),
                                inputs_.size(), output_names_.data(), outputs_.size(), produced.data());
  for (OrtValue* v : produced) {
    if (v != nullptr) api_->ReleaseValue(v);
  }
  return status;
}

std::unique_ptr<Worker> Session::make_worker(size_t set) {
  if (!prepared_) throw std::logic_error("session is not prepared: call prepare() first");
  check_set(set);
  const Runtime& rt = *rt_;
  auto w = std::make_unique<Worker>();
  w->set = set;
  // The worker's own outputs: allocated by one Run, like the session's.
  std::vector<OrtValue*> produced(outputs_.size(), nullptr);
  ++untimed_calls_;
  OrtStatus* status = api_->Run(session_.get(), run_options_.get(), input_names_.data(), set_ptrs_[set].data(),
                                inputs_.size(), output_names_.data(), outputs_.size(), produced.data());
  for (OrtValue* v : produced) {
    w->outputs.emplace_back(api_->ReleaseValue);
    *w->outputs.back().out() = v;
  }
  rt.check(status);
  for (size_t k = 0; k < set_ptrs_.size(); ++k) {
    w->bindings.emplace_back(api_->ReleaseIoBinding);
    rt.check(api_->CreateIoBinding(session_.get(), w->bindings.back().out()));
    OrtIoBinding* binding = w->bindings.back().get();
    for (size_t i = 0; i < inputs_.size(); ++i) {
      rt.check(api_->BindInput(binding, input_names_[i], set_ptrs_[k][i]));
    }
    for (size_t i = 0; i < outputs_.size(); ++i) {
      if (outputs_preallocated_ && output_numeric_[i]) {
        rt.check(api_->BindOutput(binding, output_names_[i], w->outputs[i].get()));
      } else {
        rt.check(api_->BindOutputToDevice(binding, output_names_[i], cpu_memory_.get()));
      }
    }
    ++untimed_calls_;
    rt.check(api_->RunWithBinding(session_.get(), run_options_.get(), binding));
  }
  w->run_outputs.assign(outputs_.size(), nullptr);
  return w;
}

CallHandles Session::handles() noexcept {
  return CallHandles{api_,
                     session_.get(),
                     run_options_.get(),
                     binding_ptrs_.data(),
                     set_arrays_.data(),
                     binding_ptrs_.size(),
                     input_names_.data(),
                     inputs_.size(),
                     output_names_.data(),
                     run_outputs_.data(),
                     run_outputs_.size()};
}

}  // namespace inferspeed
