// Measurement loops. Everything between the first and the last clock read runs here, in C++,
// with no allocation, no Python and no logging inside a timed region.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "inferspeed/flush.hpp"
#include "inferspeed/session.hpp"

namespace inferspeed {

/// How each timed call enters ONNX Runtime.
enum class CallMode : int {
  binding = 0,  ///< RunWithBinding on inputs and outputs bound once (outputs preallocated)
  run = 1,      ///< OrtApi::Run with outputs allocated by ORT on every call, as applications do
};

/// When a closed loop stops: after `max_iterations` timed iterations or once `max_ns` have
/// elapsed, whichever comes first (<= 0: no such limit; with neither, kMaxSamples). At least
/// one iteration always runs. A loop never collects more than kMaxSamples samples: one that
/// stops there before its own limits says so (LoopResult::capped).
/// Between chunks of at most `chunk_ns` the loop calls the hook.
/// With a `flusher`, the caches are evicted before every iteration, outside the timed region
/// (cold-cache measurement). Iteration i uses input set i mod (number of sets).
struct LoopSpec {
  CallMode mode = CallMode::binding;
  int64_t max_iterations = 0;
  int64_t max_ns = 0;
  int64_t chunk_ns = 20'000'000;
  CacheFlusher* flusher = nullptr;
};

/// The largest number of samples one loop collects (512 MiB of int64).
inline constexpr int64_t kMaxSamples = int64_t{1} << 26;

/// Samples of one closed loop: one latency per iteration, in nanoseconds, in order.
struct LoopResult {
  std::vector<int64_t> samples_ns;
  int64_t start_ns = 0;  ///< clock at the first timed iteration's start
  int64_t end_ns = 0;    ///< clock after the last chunk
  bool interrupted = false;  ///< the hook asked to stop before a limit was reached
  bool capped = false;       ///< stopped at kMaxSamples samples, before the limits asked for
};

/// Called between chunks (outside any timed region); returns false to stop the loop.
using ChunkHook = std::function<bool()>;

/// Closed loop (single stream): each call starts when the previous one returns.
/// `session` must be prepared. Throws OrtError if a call fails.
LoopResult closed_loop(Session& session, const LoopSpec& spec, const ChunkHook& between_chunks);

/// A call timed by callable_loop; returns false when it failed (the caller keeps the error).
using CallFn = bool (*)(void* context);

/// Limits of a callable loop: as LoopSpec's, and `batch` calls per pair of clock reads.
struct CallableSpec {
  int64_t max_iterations = 0;  ///< samples (each of `batch` calls); <= 0: no limit
  int64_t max_ns = 0;
  int64_t chunk_ns = 20'000'000;
  int64_t batch = 1;
};

/// Closed loop over any call (e.g. a Python callable, through a trampoline): each sample is
/// the time of `batch` consecutive calls of `fn(context)`. Stops like closed_loop, or at the
/// first call that returns false (then `*failed` is set and the samples so far are kept).
LoopResult callable_loop(CallFn fn, void* context, const CallableSpec& spec, const ChunkHook& between_chunks,
                         bool* failed);

}  // namespace inferspeed
