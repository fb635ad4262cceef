// Exception types of the measurement core. The binding layer registers each as a Python
// exception deriving from inferspeed.InferspeedError.
#pragma once

#include <stdexcept>
#include <string>

namespace inferspeed {

/// An OrtStatus turned into an exception: ONNX Runtime's error code and message.
class OrtError : public std::runtime_error {
 public:
  OrtError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  /// OrtErrorCode as an int (ORT_FAIL = 1, ORT_INVALID_ARGUMENT = 2, ...).
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// The ONNX Runtime library could not be loaded or is too old.
class RuntimeLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace inferspeed
