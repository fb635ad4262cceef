#include "inferspeed/loops.hpp"

#include <algorithm>
#include <stdexcept>

#include "inferspeed/clock.hpp"
#include "inferspeed/error.hpp"
#include "inferspeed/interrupt.hpp"

namespace inferspeed {

namespace {

// Iterations of one chunk are bounded so the sample buffer can be grown between chunks,
// never inside one.
constexpr int64_t kChunkIterations = int64_t{1} << 16;

// Time up to `n` calls, storing each latency in out[0..]; stop early once a call ends at or
// after `deadline`. `*set` is the input set of the next call; it advances after each call.
// Returns the number of calls made; *status holds a failed call's status.
template <CallMode Mode>
int64_t timed_chunk(const CallHandles& h, CacheFlusher* flusher, size_t* set, int64_t* out, int64_t n,
                    int64_t deadline, OrtStatus** status) {
  int64_t i = 0;
  size_t k = *set;
  while (i < n) {
    if (flusher != nullptr) flusher->flush();
    const int64_t t0 = now_ns();
    OrtStatus* st;
    if constexpr (Mode == CallMode::binding) {
      st = h.api->RunWithBinding(h.session, h.run_options, h.bindings[k]);
    } else {
      st = h.api->Run(h.session, h.run_options, h.input_names, h.input_values[k], h.input_count,
                      h.output_names, h.output_count, h.run_outputs);
    }
    const int64_t t1 = now_ns();
    out[i++] = t1 - t0;
    if constexpr (Mode == CallMode::run) {
      // An application frees what Run returned; we do it too, after the clock read.
      for (size_t j = 0; j < h.output_count; ++j) {
        if (h.run_outputs[j] != nullptr) h.api->ReleaseValue(h.run_outputs[j]);
        h.run_outputs[j] = nullptr;
      }
    }
    k = k + 1 == h.set_count ? 0 : k + 1;
    if (st != nullptr) {
      *status = st;
      break;
    }
    if (t1 >= deadline) break;
  }
  *set = k;
  return i;
}

// How a chunk ended besides running out of calls or time.
enum class ChunkEnd { more, stop, interrupted };

struct ChunkDone {
  int64_t ran;
  ChunkEnd end;
};

// The loop both closed_loop and callable_loop run: chunks of at most kChunkIterations calls
// and chunk_ns, the sample buffer grown only between chunks, the hook called between chunks.
// run_chunk(out, n, deadline) times up to n calls into out[0..] and says how it ended.
template <class RunChunk>
LoopResult chunked_loop(int64_t wanted_iterations, int64_t max_ns, int64_t wanted_chunk_ns,
                        const ChunkHook& between_chunks, RunChunk&& run_chunk) {
  const int64_t max_iterations = wanted_iterations > 0 ? std::min(wanted_iterations, kMaxSamples) : kMaxSamples;
  const int64_t chunk_ns = wanted_chunk_ns > 0 ? wanted_chunk_ns : 20'000'000;
  LoopResult result;
  std::vector<int64_t>& samples = result.samples_ns;
  samples.reserve(static_cast<size_t>(std::min(max_iterations, kChunkIterations)));
  const int64_t start = now_ns();
  const int64_t end_by = max_ns > 0 ? start + max_ns : INT64_MAX;
  result.start_ns = start;
  int64_t done = 0;
  while (done < max_iterations) {
    const int64_t n = std::min(max_iterations - done, kChunkIterations);
    samples.resize(static_cast<size_t>(done + n));
    const int64_t chunk_start = now_ns();
    const int64_t deadline = std::min(end_by, chunk_start > INT64_MAX - chunk_ns ? INT64_MAX : chunk_start + chunk_ns);
    const ChunkDone chunk = run_chunk(samples.data() + done, n, deadline);
    done += chunk.ran;
    samples.resize(static_cast<size_t>(done));
    result.end_ns = now_ns();
    if (chunk.end == ChunkEnd::interrupted) {
      result.interrupted = true;
      break;
    }
    if (chunk.end == ChunkEnd::stop || done >= max_iterations || result.end_ns >= end_by) break;
    if (between_chunks && !between_chunks()) {
      result.interrupted = true;
      break;
    }
  }
  return result;
}

}  // namespace

LoopResult closed_loop(Session& session, const LoopSpec& spec, const ChunkHook& between_chunks) {
  if (!session.prepared()) throw std::logic_error("session is not prepared: call prepare() first");
  const CallHandles h = session.handles();
  // Ctrl-C also stops a call in progress (a model that takes seconds per call).
  const TerminateOnSigint guard(h.api, h.run_options);
  size_t set = 0;
  return chunked_loop(spec.max_iterations, spec.max_ns, spec.chunk_ns, between_chunks,
                      [&](int64_t* out, int64_t n, int64_t deadline) {
                        OrtStatus* status = nullptr;
                        const int64_t ran =
                            spec.mode == CallMode::binding
                                ? timed_chunk<CallMode::binding>(h, spec.flusher, &set, out, n, deadline, &status)
                                : timed_chunk<CallMode::run>(h, spec.flusher, &set, out, n, deadline, &status);
                        if (status == nullptr) return ChunkDone{ran, ChunkEnd::more};
                        if (!guard.fired()) session.runtime().check(status);  // throws
                        // Ctrl-C made ORT abandon the last call: not a latency; stop as interrupted.
                        h.api->ReleaseStatus(status);
                        if (between_chunks) between_chunks();  // consume the caller's pending Ctrl-C
                        return ChunkDone{std::max<int64_t>(0, ran - 1), ChunkEnd::interrupted};
                      });
}

LoopResult callable_loop(CallFn fn, void* context, const CallableSpec& spec, const ChunkHook& between_chunks,
                         bool* failed) {
  if (fn == nullptr) throw std::invalid_argument("callable_loop needs a function");
  if (spec.batch < 1) throw std::invalid_argument("batch must be at least 1");
  *failed = false;
  const int64_t batch = spec.batch;
  return chunked_loop(spec.max_iterations, spec.max_ns, spec.chunk_ns, between_chunks,
                      [&](int64_t* out, int64_t n, int64_t deadline) {
                        int64_t i = 0;
                        while (i < n) {
                          bool ok = true;
                          const int64_t t0 = now_ns();
                          for (int64_t k = 0; k < batch && ok; ++k) ok = fn(context);
                          const int64_t t1 = now_ns();
                          if (!ok) {
                            *failed = true;
                            return ChunkDone{i, ChunkEnd::stop};
                          }
                          out[i++] = t1 - t0;
                          if (t1 >= deadline) break;
                        }
                        return ChunkDone{i, ChunkEnd::more};
                      });
}

}  // namespace inferspeed
