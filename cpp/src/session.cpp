#include "inferspeed/session.hpp"

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

Session::Session(std::shared_ptr<Runtime> runtime, const std::string& model_path,
                 const SessionConfig& config)
    : rt_(std::move(runtime)),
      api_(&rt_->api()),
      options_(api_->ReleaseSessionOptions),
      session_(api_->ReleaseSession),
      run_options_(api_->ReleaseRunOptions),
      cpu_memory_(api_->ReleaseMemoryInfo),
      binding_(api_->ReleaseIoBinding) {
  const Runtime& rt = *rt_;
  rt.check(api_->CreateSessionOptions(options_.out()));
  OrtSessionOptions* so = options_.get();
  if (config.intra_op_threads > 0) rt.check(api_->SetIntraOpNumThreads(so, config.intra_op_threads));
  if (config.inter_op_threads > 0) rt.check(api_->SetInterOpNumThreads(so, config.inter_op_threads));
  rt.check(api_->SetSessionGraphOptimizationLevel(
      so, static_cast<GraphOptimizationLevel>(config.graph_optimization_level)));
  rt.check(api_->SetSessionExecutionMode(so, config.parallel_execution ? ORT_PARALLEL : ORT_SEQUENTIAL));
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
      rt.check(api_->SessionOptionsAppendExecutionProvider(so, name.c_str(), kv.keys.data(),
                                                           kv.values.data(), kv.keys.size()));
    }
  }

  const int64_t t0 = now_ns();
  rt.check(api_->CreateSession(rt.env(), model_path.c_str(), so, session_.out()));
  create_ns_ = now_ns() - t0;

  rt.check(api_->CreateRunOptions(run_options_.out()));
  rt.check(api_->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, cpu_memory_.out()));
  rt.check(api_->CreateIoBinding(session_.get(), binding_.out()));

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
  for (size_t i = 0; i < inputs_.size(); ++i) input_values_.emplace_back(api_->ReleaseValue);
  input_ptrs_.assign(inputs_.size(), nullptr);
  run_outputs_.assign(outputs_.size(), nullptr);
}

Session::~Session() {
  for (OrtValue*& v : run_outputs_) {
    if (v != nullptr) api_->ReleaseValue(v);
    v = nullptr;
  }
  // Members release in reverse order: binding before the values it refers to, then session.
  binding_.reset();
}

ValueInfo Session::describe(const char* name, const OrtTypeInfo* info) const {
  const Runtime& rt = *rt_;
  ValueInfo out;
  out.name = name;
  ONNXType type = ONNX_TYPE_UNKNOWN;
  rt.check(api_->GetOnnxTypeFromTypeInfo(info, &type));
  out.kind = static_cast<ValueKind>(type);
  if (type != ONNX_TYPE_TENSOR && type != ONNX_TYPE_SPARSETENSOR) return out;
  const OrtTensorTypeAndShapeInfo* tensor = nullptr;
  rt.check(api_->CastTypeInfoToTensorInfo(info, &tensor));
  if (tensor == nullptr) return out;
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
  return out;
}

size_t Session::input_index(const std::string& name) const {
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (inputs_[i].name == name) return i;
  }
  throw std::invalid_argument("model has no input named '" + name + "'");
}

void Session::bind_input(const std::string& name, int element_type, const std::vector<int64_t>& shape,
                         void* data, size_t nbytes) {
  const size_t i = input_index(name);
  rt_->check(api_->CreateTensorWithDataAsOrtValue(cpu_memory_.get(), data, nbytes, shape.data(), shape.size(),
                                                  static_cast<ONNXTensorElementDataType>(element_type),
                                                  input_values_[i].out()));
  input_ptrs_[i] = input_values_[i].get();
  prepared_ = false;
}

void Session::bind_string_input(const std::string& name, const std::vector<int64_t>& shape,
                                const std::vector<std::string>& values) {
  const size_t i = input_index(name);
  OrtAllocator* allocator = nullptr;
  rt_->check(api_->GetAllocatorWithDefaultOptions(&allocator));
  rt_->check(api_->CreateTensorAsOrtValue(allocator, shape.data(), shape.size(),
                                          ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, input_values_[i].out()));
  std::vector<const char*> c_strings;
  c_strings.reserve(values.size());
  for (const std::string& s : values) c_strings.push_back(s.c_str());
  rt_->check(api_->FillStringTensor(input_values_[i].get(), c_strings.data(), c_strings.size()));
  input_ptrs_[i] = input_values_[i].get();
  prepared_ = false;
}

void Session::bind_outputs_to_device() {
  api_->ClearBoundOutputs(binding_.get());
  for (const char* name : output_names_) {
    rt_->check(api_->BindOutputToDevice(binding_.get(), name, cpu_memory_.get()));
  }
}

void Session::prepare() {
  const Runtime& rt = *rt_;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (input_ptrs_[i] == nullptr) throw std::invalid_argument("input '" + inputs_[i].name + "' has no value bound");
  }
  api_->ClearBoundInputs(binding_.get());
  api_->ClearBoundOutputs(binding_.get());
  output_values_.clear();
  for (size_t i = 0; i < inputs_.size(); ++i) {
    rt.check(api_->BindInput(binding_.get(), input_names_[i], input_ptrs_[i]));
  }

  // First (cold) run through Run: ORT allocates the outputs, which tells us their shapes.
  std::vector<OrtValue*> produced(outputs_.size(), nullptr);
  const int64_t t0 = now_ns();
  OrtStatus* status = api_->Run(session_.get(), run_options_.get(), input_names_.data(), input_ptrs_.data(),
                                inputs_.size(), output_names_.data(), outputs_.size(), produced.data());
  first_run_ns_ = now_ns() - t0;
  for (OrtValue* v : produced) {
    output_values_.emplace_back(api_->ReleaseValue);
    *output_values_.back().out() = v;
  }
  rt.check(status);

  // Reuse those very buffers as the preallocated outputs of every bound call. Values that are
  // not plain numeric tensors (sequences, maps, strings) are left to ORT to allocate.
  outputs_preallocated_ = true;
  for (size_t i = 0; i < outputs_.size(); ++i) {
    OrtValue* v = output_values_[i].get();
    int is_tensor = 0;
    if (v != nullptr) rt.check(api_->IsTensor(v, &is_tensor));
    bool numeric = false;
    if (is_tensor != 0) {
      detail::Handle<OrtTensorTypeAndShapeInfo> info(api_->ReleaseTensorTypeAndShapeInfo);
      rt.check(api_->GetTensorTypeAndShape(v, info.out()));
      ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
      rt.check(api_->GetTensorElementType(info.get(), &element));
      numeric = element != ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    }
    if (numeric) {
      rt.check(api_->BindOutput(binding_.get(), output_names_[i], v));
    } else {
      outputs_preallocated_ = false;
      rt.check(api_->BindOutputToDevice(binding_.get(), output_names_[i], cpu_memory_.get()));
    }
  }
  // A model whose output shapes change from run to run rejects preallocated buffers:
  // fall back to outputs that ORT allocates on each bound call.
  status = api_->RunWithBinding(session_.get(), run_options_.get(), binding_.get());
  if (status != nullptr && outputs_preallocated_) {
    api_->ReleaseStatus(status);
    bind_outputs_to_device();
    outputs_preallocated_ = false;
    status = api_->RunWithBinding(session_.get(), run_options_.get(), binding_.get());
  }
  rt.check(status);
  prepared_ = true;
}

CallHandles Session::handles() noexcept {
  return CallHandles{api_,
                     session_.get(),
                     run_options_.get(),
                     binding_.get(),
                     input_names_.data(),
                     input_ptrs_.data(),
                     input_ptrs_.size(),
                     output_names_.data(),
                     run_outputs_.data(),
                     run_outputs_.size()};
}

}  // namespace inferspeed
