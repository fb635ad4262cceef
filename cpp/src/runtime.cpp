#include "inferspeed/runtime.hpp"

#include <dlfcn.h>

#include <cstring>

#include "inferspeed/error.hpp"

namespace inferspeed {

namespace {
using GetApiBaseFn = const OrtApiBase* (*)();
}  // namespace

std::shared_ptr<Runtime> Runtime::load(const std::string& library_path, int log_level) {
  // RTLD_LOCAL: another copy of ORT in the process (the onnxruntime Python module links one
  // statically) must not resolve symbols against this one, nor this one against it.
  void* handle = dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw RuntimeLoadError("cannot load ONNX Runtime library '" + library_path +
                           "': " + (why ? why : "unknown dlopen error"));
  }
  void* symbol = dlsym(handle, "OrtGetApiBase");
  if (symbol == nullptr) {
    throw RuntimeLoadError("'" + library_path +
                           "' does not export OrtGetApiBase: not an ONNX Runtime C API library");
  }
  GetApiBaseFn get_api_base = nullptr;
  static_assert(sizeof(get_api_base) == sizeof(symbol), "function and object pointers differ");
  std::memcpy(&get_api_base, &symbol, sizeof(symbol));
  const OrtApiBase* base = get_api_base();
  const std::string version = base->GetVersionString ? base->GetVersionString() : "unknown";
  const OrtApi* api = base->GetApi(INFERSPEED_ORT_API_VERSION);
  if (api == nullptr) {
    throw RuntimeLoadError("ONNX Runtime " + version + " at '" + library_path +
                           "' does not provide C API version " +
                           std::to_string(INFERSPEED_ORT_API_VERSION) +
                           "; inferspeed needs onnxruntime 1." +
                           std::to_string(INFERSPEED_ORT_API_VERSION) + " or newer");
  }
  std::shared_ptr<Runtime> rt(new Runtime());
  rt->handle_ = handle;
  rt->api_ = api;
  rt->path_ = library_path;
  rt->version_ = version;
  if (log_level < 0) log_level = 0;
  if (log_level > 4) log_level = 4;
  rt->check(api->CreateEnv(static_cast<OrtLoggingLevel>(log_level), "inferspeed", &rt->env_));
  return rt;
}

Runtime::~Runtime() {
  if (api_ != nullptr && env_ != nullptr) api_->ReleaseEnv(env_);
}

std::vector<std::string> Runtime::available_providers() const {
  char** names = nullptr;
  int count = 0;
  check(api_->GetAvailableProviders(&names, &count));
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.emplace_back(names[i]);
  check(api_->ReleaseAvailableProviders(names, count));
  return out;
}

void Runtime::check(OrtStatus* status) const {
  if (status == nullptr) return;
  const int code = static_cast<int>(api_->GetErrorCode(status));
  std::string message = api_->GetErrorMessage(status);
  api_->ReleaseStatus(status);
  throw OrtError(code, message);
}

}  // namespace inferspeed
