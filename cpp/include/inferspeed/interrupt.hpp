// Ctrl-C inside a long ONNX Runtime call: while a TerminateOnSigint guard is alive, SIGINT (and
// SIGTERM, where the process handles it: the inferspeed command does) also sets ORT's terminate
// flag on the guarded run options (OrtApi::RunOptionsSetTerminate), so a Run that takes seconds
// returns within ORT's next check instead of running to its end. The previous handler
// (Python's) is still called, so Python sees the signal as usual.
#pragma once

#include <onnxruntime_c_api.h>

namespace inferspeed {

class TerminateOnSigint {
 public:
  /// Guards `run_options` until destroyed (clearing a terminate flag left set on them first).
  /// Installs nothing for a signal that is ignored (SIG_IGN) or has its default action
  /// (SIG_DFL: the signal then ends the process, as it would without us).
  TerminateOnSigint(const OrtApi* api, OrtRunOptions* run_options);
  ~TerminateOnSigint();
  TerminateOnSigint(const TerminateOnSigint&) = delete;
  TerminateOnSigint& operator=(const TerminateOnSigint&) = delete;

  /// SIGINT arrived while this guard was alive (ORT was asked to stop its calls).
  bool fired() const noexcept;

 private:
  int slot_ = -1;
};

}  // namespace inferspeed
