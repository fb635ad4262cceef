// ONNX Runtime, loaded at run time from a shared library (dlopen), not linked.
#pragma once

#include <onnxruntime_c_api.h>

#include <memory>
#include <string>
#include <vector>

namespace inferspeed {

/// A loaded libonnxruntime: the OrtApi table of the requested version and one OrtEnv.
///
/// The library is never dlclose()d: ONNX Runtime keeps thread pools and static state alive
/// for the life of the process, and unloading it under them is unsafe.
class Runtime {
 public:
  /// dlopen() `library_path` and request C API version INFERSPEED_ORT_API_VERSION.
  /// `log_level` is ORT's (0 verbose .. 4 fatal). Throws RuntimeLoadError.
  static std::shared_ptr<Runtime> load(const std::string& library_path, int log_level);

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  const OrtApi& api() const noexcept { return *api_; }
  OrtEnv* env() const noexcept { return env_; }
  const std::string& path() const noexcept { return path_; }
  const std::string& version() const noexcept { return version_; }
  /// The C API version requested from the library.
  static int api_version() noexcept { return INFERSPEED_ORT_API_VERSION; }
  /// Execution providers compiled into this library.
  std::vector<std::string> available_providers() const;

  /// Throw OrtError if `status` is an error (and release it).
  void check(OrtStatus* status) const;

 private:
  Runtime() = default;
  void* handle_ = nullptr;
  const OrtApi* api_ = nullptr;
  OrtEnv* env_ = nullptr;
  std::string path_;
  std::string version_;
};

}  // namespace inferspeed
