// Load scenarios with several concurrent workers: server (requests at scheduled arrival times)
// and offline (every worker back to back). Everything timed runs here, on C++ threads.
#pragma once

#include <cstdint>
#include <vector>

#include "inferspeed/loops.hpp"
#include "inferspeed/session.hpp"

namespace inferspeed {

/// Server scenario: request i arrives `arrivals_ns[i]` after the start (non-decreasing). The
/// first free worker takes the oldest waiting request, so a request that finds every worker
/// busy waits in a FIFO queue. A worker that is idle sleeps until the next arrival, waking
/// `spin_ns` early to spin the rest of the way for precision.
struct ServerSpec {
  CallMode mode = CallMode::binding;
  std::vector<int64_t> arrivals_ns;
  int64_t spin_ns = 200'000;
  int64_t chunk_ns = 20'000'000;  ///< how often the coordinating thread calls the hook
};

/// Per request, nanoseconds after the start: when a worker began and finished it (-1: never
/// started, after an interrupt), which worker ran it, and whether that worker was idle and
/// waiting for it (then start - arrival is the scheduler's own lateness).
struct ServerResult {
  std::vector<int64_t> start_ns;
  std::vector<int64_t> end_ns;
  std::vector<int32_t> worker;
  std::vector<uint8_t> waited;
  int64_t origin_ns = 0;  ///< clock at the start (arrival offsets count from here)
  int64_t ready_ns = 0;   ///< clock when every worker's thread was running (before origin_ns)
  bool interrupted = false;
};

/// Run the server scenario with one thread per worker (`workers` must each belong to
/// `session`). The origin is fixed once every thread is running, so thread start-up is never
/// counted as queueing. Serves every scheduled request unless interrupted (a stop wakes the
/// workers sleeping until their next arrival). Throws OrtError on failure, and rethrows what
/// the hook or a worker threw, once every thread has joined.
ServerResult run_server(Session& session, const std::vector<Worker*>& workers, const ServerSpec& spec,
                        const ChunkHook& between_chunks);

/// Offline scenario: each worker calls the model back to back for `duration_ns`.
struct OfflineSpec {
  CallMode mode = CallMode::binding;
  int64_t duration_ns = 0;
  int64_t chunk_ns = 20'000'000;
  int64_t expected_per_worker = 0;  ///< capacity hint for the per-worker sample buffers
};

/// Per worker, the start and end (ns after the start) of every call it made.
struct OfflineResult {
  std::vector<std::vector<int64_t>> start_ns;
  std::vector<std::vector<int64_t>> end_ns;
  int64_t origin_ns = 0;
  int64_t elapsed_ns = 0;  ///< from the start until the last worker stopped
  bool interrupted = false;
};

OfflineResult run_offline(Session& session, const std::vector<Worker*>& workers, const OfflineSpec& spec,
                          const ChunkHook& between_chunks);

}  // namespace inferspeed
