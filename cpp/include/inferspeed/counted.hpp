// Counted calls: the model's calls run for Valgrind's Callgrind, which counts the instructions
// of each (the instruction-count metric). Nothing here is timed for latency.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "inferspeed/loops.hpp"
#include "inferspeed/session.hpp"

namespace inferspeed {

/// True when this build has Callgrind's client requests (<valgrind/callgrind.h> was found).
bool callgrind_client_requests() noexcept;

/// True when the process runs under Valgrind (false in a build without the client requests).
bool running_on_valgrind() noexcept;

/// The instruction-set extensions the CPU reports to this process, as ONNX Runtime sees them
/// (under Valgrind, its emulated CPU's: no AVX-512), e.g. {"avx2", "fma", "avx"}.
std::vector<std::string> cpu_extensions();

/// What to count: `warmup` calls (instrumented, not collected), then `calls` counted calls.
/// With `client_requests` (a build that has them), the calls are bracketed by Callgrind's
/// client requests: instrumentation starts before the warm-up (Valgrind runs with
/// --instr-atstart=no, so everything before runs uninstrumented) and each counted call is
/// collected alone and dumped (one dump per call, whose totals are that call's counts).
/// Without, every call (warm-up included) goes through the exported function
/// inferspeed_counted_call, which Valgrind's --toggle-collect and --dump-after name.
struct CountedSpec {
  CallMode mode = CallMode::binding;
  int64_t warmup = 0;
  int64_t calls = 1;
  bool client_requests = true;
};

/// The wall-clock time of each counted call (under Valgrind: its simulated run, tens of times
/// slower than native; not a latency) and whether client requests bracketed them.
struct CountedResult {
  std::vector<int64_t> ns;
  bool client_requests = false;
};

/// Run the counted calls on a prepared session. Throws OrtError when a call fails.
CountedResult counted_calls(Session& session, const CountedSpec& spec);

}  // namespace inferspeed

/// One model call (input set `set`), the function Valgrind's --toggle-collect and --dump-after
/// name when the build has no client requests. Exported so that a stripped module keeps its name.
extern "C" OrtStatus* inferspeed_counted_call(const inferspeed::CallHandles* handles, int mode, size_t set);
