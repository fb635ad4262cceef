#include "inferspeed/loops.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

#include "inferspeed/clock.hpp"
#include "inferspeed/error.hpp"
#include "inferspeed/interrupt.hpp"

namespace inferspeed {

namespace {

// Iterations of one chunk, and samples of one SampleBlocks block: new blocks are allocated
// between chunks, never inside one.
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

// Where a loop's samples go: blocks of at most kChunkIterations, each allocated when the one
// before is full (between chunks, outside any timed region) and never written ahead. The
// loop's only write to it is the 8 bytes of each sample, after that call's clock read: no
// zero-fill, no reallocate-and-copy, so the harness evicts nothing from the caches between
// the model's calls (a 512 KiB zero-fill before a chunk would push an L2-sized model out).
class SampleBlocks {
 public:
  explicit SampleBlocks(int64_t max_samples) : left_(max_samples) {}

  // Room for up to `want` samples, contiguous; *room says how many (>= 1 while any are left).
  int64_t* room(int64_t want, int64_t* room) {
    if (blocks_.empty() || used_ == size_) {
      size_ = std::min(left_, kChunkIterations);
      blocks_.emplace_back(new int64_t[static_cast<size_t>(size_)]);  // default-initialised: untouched
      sizes_.push_back(0);
      used_ = 0;
      left_ -= size_;
    }
    *room = std::min(want, size_ - used_);
    return blocks_.back().get() + used_;
  }
  void commit(int64_t ran) noexcept {
    used_ += ran;
    sizes_.back() = used_;
  }
  // Every sample in order, in one vector (after the loop: copying is not timed).
  std::vector<int64_t> gather() const {
    int64_t total = 0;
    for (int64_t n : sizes_) total += n;
    std::vector<int64_t> out;
    out.reserve(static_cast<size_t>(total));
    for (size_t b = 0; b < blocks_.size(); ++b) out.insert(out.end(), blocks_[b].get(), blocks_[b].get() + sizes_[b]);
    return out;
  }

 private:
  std::vector<std::unique_ptr<int64_t[]>> blocks_;
  std::vector<int64_t> sizes_;
  int64_t size_ = 0;
  int64_t used_ = 0;
  int64_t left_;
};

// now + ns without overflow (INT64_MAX: no limit).
int64_t deadline_after(int64_t now, int64_t ns) noexcept { return now > INT64_MAX - ns ? INT64_MAX : now + ns; }

// The loop both closed_loop and callable_loop run: chunks of at most kChunkIterations calls
// and chunk_ns, samples stored in SampleBlocks, the hook called between chunks.
// run_chunk(out, n, deadline) times up to n calls into out[0..] and says how it ended.
template <class RunChunk>
LoopResult chunked_loop(int64_t wanted_iterations, int64_t max_ns, int64_t wanted_chunk_ns,
                        const ChunkHook& between_chunks, RunChunk&& run_chunk) {
  const int64_t max_iterations = wanted_iterations > 0 ? std::min(wanted_iterations, kMaxSamples) : kMaxSamples;
  const int64_t chunk_ns = wanted_chunk_ns > 0 ? wanted_chunk_ns : 20'000'000;
  LoopResult result;
  SampleBlocks samples(max_iterations);
  int64_t room = 0;
  int64_t* out = samples.room(max_iterations, &room);
  const int64_t start = now_ns();
  const int64_t end_by = max_ns > 0 ? deadline_after(start, max_ns) : INT64_MAX;
  result.start_ns = start;
  int64_t done = 0;
  while (done < max_iterations) {
    if (room == 0) out = samples.room(max_iterations - done, &room);
    const int64_t deadline = std::min(end_by, deadline_after(now_ns(), chunk_ns));
    const ChunkDone chunk = run_chunk(out, room, deadline);
    samples.commit(chunk.ran);
    done += chunk.ran;
    out += chunk.ran;
    room -= chunk.ran;
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
  // Stopped by the sample limit, not by a limit the caller set.
  result.capped = done >= kMaxSamples && (wanted_iterations <= 0 || wanted_iterations > kMaxSamples);
  result.samples_ns = samples.gather();
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
