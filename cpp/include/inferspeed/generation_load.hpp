// Generation requests under load: each request is one whole greedy generation (a prefill, then
// one decode step per token), served by one of K streams that share a session. Each stream is
// a Generation of its own (its own cache buffers and IoBinding) on a thread of its own. The
// request's times are read in C++ as its tokens are chosen; Python computes the schedule
// before and the statistics after.
#pragma once

#include <cstdint>
#include <vector>

#include "inferspeed/generation.hpp"
#include "inferspeed/loops.hpp"
#include "inferspeed/session.hpp"

namespace inferspeed {

/// Request i arrives `arrivals_ns[i]` after the start (non-decreasing; all 0: every request
/// queued at once, the offline scenario). The first free stream takes the oldest waiting
/// request (a FIFO queue with K servers); an idle stream sleeps until the next arrival,
/// waking `spin_ns` early to spin the rest of the way. With `stop_after_ns` > 0 no request
/// starts once that long has passed since the start (those in progress finish).
/// Request i has a prompt of `prompt_tokens[i]` tokens (the first of each row of the streams'
/// prompt) and outputs `gen_tokens[i]` tokens, each from 1 to the streams' own lengths; both
/// empty: every request the streams' lengths.
struct GenerationLoadSpec {
  std::vector<int64_t> arrivals_ns;
  std::vector<int64_t> prompt_tokens;
  std::vector<int64_t> gen_tokens;
  int64_t spin_ns = 200'000;
  int64_t chunk_ns = 20'000'000;  ///< how often the coordinating thread calls the hook
  int64_t stop_after_ns = 0;
};

/// Per request, in nanoseconds after the start (-1: never started or not reached): when a
/// stream began it, when each of its tokens was chosen, each step's call, the tokens chosen,
/// which stream ran it, and whether that stream was idle and waiting for it (then start -
/// arrival is the scheduler's own lateness).
struct GenerationLoadResult {
  int64_t gen_tokens = 0;
  int64_t batch = 0;
  std::vector<int64_t> start_ns;  ///< [requests]
  std::vector<int64_t> token_ns;  ///< [requests, gen_tokens] (-1 beyond a request's own)
  std::vector<int64_t> step_ns;   ///< [requests, gen_tokens]: each RunWithBinding alone
  std::vector<int64_t> tokens;    ///< [requests, batch, gen_tokens]: the ids chosen
  std::vector<int32_t> stream;    ///< [requests]
  std::vector<uint8_t> waited;    ///< [requests]
  int64_t origin_ns = 0;  ///< clock at the start (arrival offsets count from here)
  int64_t ready_ns = 0;   ///< clock when every stream's thread was running (before origin_ns)
  bool interrupted = false;
};

/// Serve the requests with one thread per stream (each a Generation of `session` that has
/// run a whole generation already, all of the same lengths and batch). The origin is fixed once every
/// thread is running. Serves every scheduled request unless interrupted or stopped by
/// `stop_after_ns`. Throws std::invalid_argument for streams that do not fit, OrtError when a
/// step fails, and rethrows what the hook threw, once every thread has joined.
GenerationLoadResult run_generation_load(Session& session, const std::vector<Generation*>& streams,
                                         const GenerationLoadSpec& spec, const ChunkHook& between_chunks);

}  // namespace inferspeed
