#include "inferspeed/counted.hpp"

#include <stdexcept>
#include <string>

#include "inferspeed/clock.hpp"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define INFERSPEED_HAVE_CALLGRIND 1
#endif
#endif

#ifndef INFERSPEED_HAVE_CALLGRIND
#define INFERSPEED_HAVE_CALLGRIND 0
#endif

extern "C" __attribute__((noinline, visibility("default"))) OrtStatus* inferspeed_counted_call(
    const inferspeed::CallHandles* handles, int mode, size_t set) {
  const inferspeed::CallHandles& h = *handles;
  if (mode == static_cast<int>(inferspeed::CallMode::binding)) {
    return h.api->RunWithBinding(h.session, h.run_options, h.bindings[set]);
  }
  return h.api->Run(h.session, h.run_options, h.input_names, h.input_values[set], h.input_count, h.output_names,
                    h.output_count, h.run_outputs);
}

namespace inferspeed {

namespace {

// The client requests, or nothing in a build without them.
void start_instrumentation() noexcept {
#if INFERSPEED_HAVE_CALLGRIND
  CALLGRIND_START_INSTRUMENTATION;
#endif
}

void stop_instrumentation() noexcept {
#if INFERSPEED_HAVE_CALLGRIND
  CALLGRIND_STOP_INSTRUMENTATION;
#endif
}

void toggle_collect() noexcept {
#if INFERSPEED_HAVE_CALLGRIND
  CALLGRIND_TOGGLE_COLLECT;
#endif
}

void dump_stats([[maybe_unused]] const char* label) noexcept {
#if INFERSPEED_HAVE_CALLGRIND
  CALLGRIND_DUMP_STATS_AT(label);
#endif
}

// One call; a Run's outputs released after it (outside the counted region, as the timed loop
// releases them after its clock read). Throws when the call failed.
void call_once(Session& session, const CallHandles& h, CallMode mode, size_t set, bool collect) {
  if (collect) toggle_collect();
  OrtStatus* status = inferspeed_counted_call(&h, static_cast<int>(mode), set);
  if (collect) toggle_collect();
  if (mode == CallMode::run) {
    for (size_t j = 0; j < h.output_count; ++j) {
      if (h.run_outputs[j] != nullptr) h.api->ReleaseValue(h.run_outputs[j]);
      h.run_outputs[j] = nullptr;
    }
  }
  session.runtime().check(status);  // throws on a failed call
}

}  // namespace

bool callgrind_client_requests() noexcept { return INFERSPEED_HAVE_CALLGRIND != 0; }

bool running_on_valgrind() noexcept {
#if INFERSPEED_HAVE_CALLGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

std::vector<std::string> cpu_extensions() {
  std::vector<std::string> found;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) found.emplace_back("avx512f");
  if (__builtin_cpu_supports("avx512bw")) found.emplace_back("avx512bw");
  if (__builtin_cpu_supports("avx512vnni")) found.emplace_back("avx512vnni");
  if (__builtin_cpu_supports("avx2")) found.emplace_back("avx2");
  if (__builtin_cpu_supports("fma")) found.emplace_back("fma");
  if (__builtin_cpu_supports("avx")) found.emplace_back("avx");
  if (__builtin_cpu_supports("sse4.2")) found.emplace_back("sse4.2");
#endif
  return found;
}

CountedResult counted_calls(Session& session, const CountedSpec& spec) {
  if (!session.prepared()) throw std::logic_error("session is not prepared: call prepare() first");
  if (spec.calls < 1) throw std::invalid_argument("calls must be at least 1");
  if (spec.warmup < 0) throw std::invalid_argument("warmup must not be negative");
  const bool requests = spec.client_requests && callgrind_client_requests();
  const CallHandles h = session.handles();
  CountedResult result;
  result.client_requests = requests;
  result.ns.reserve(static_cast<size_t>(spec.calls));
  size_t set = 0;
  const auto next = [&h](size_t k) { return k + 1 == h.set_count ? size_t{0} : k + 1; };
  if (requests) start_instrumentation();
  for (int64_t i = 0; i < spec.warmup; ++i) {
    call_once(session, h, spec.mode, set, false);
    set = next(set);
  }
  for (int64_t i = 0; i < spec.calls; ++i) {
    const int64_t t0 = now_ns();
    call_once(session, h, spec.mode, set, requests);
    const int64_t t1 = now_ns();
    if (requests) dump_stats("inferspeed counted call");
    result.ns.push_back(t1 - t0);
    set = next(set);
  }
  if (requests) stop_instrumentation();
  return result;
}

}  // namespace inferspeed
