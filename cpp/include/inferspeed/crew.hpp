// The threads of a load scenario: one per worker, started together, stopped together. Shared by
// the single-call scenarios (scenarios.cpp) and the generation scenarios (generation_load.cpp).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "inferspeed/loops.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace inferspeed {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

/// What the coordinating thread and the workers of one scenario share: the start gate (the
/// workers wait until every one of them is running, then the coordinator fixes the time
/// origin), the stop request, and the first exception a worker threw. One mutex and condition
/// variable serve all: a stop wakes a worker sleeping until its next arrival at once.
class Crew {
 public:
  explicit Crew(size_t count) : count_(count) {}

  bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }
  void request_stop() noexcept;

  /// Worker side of the gate: say it is running, wait for the origin. False: stop instead.
  bool arrive();
  /// Coordinator side: once every worker is running, the origin is `lead_ns` from now.
  void open(int64_t lead_ns);
  int64_t origin() const noexcept { return origin_; }      ///< read after open()/arrive() only
  int64_t ready_ns() const noexcept { return ready_ns_; }  ///< when the last worker was running

  /// Sleep until `target_ns` on the monotonic clock, waking `spin_ns` early to spin the rest
  /// of the way (the kernel's wake-up is tens of microseconds late, a spin is not). Returns
  /// early on a stop.
  void wait_until(int64_t target_ns, int64_t spin_ns);

  /// A worker threw: keep the first exception and stop everyone.
  void fail(std::exception_ptr e) noexcept;
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  size_t count_;
  size_t ready_ = 0;
  bool open_ = false;
  int64_t origin_ = 0;
  int64_t ready_ns_ = 0;
  std::exception_ptr error_;
};

/// Wait for `running` to reach zero, calling the hook every chunk_ns; a false from the hook
/// asks the crew to stop. Returns true when the hook asked to stop.
bool coordinate(const std::atomic<int>& running, Crew& crew, int64_t chunk_ns, const ChunkHook& between_chunks);

/// Time the workers' threads have, once all are running, before the origin: enough to wake
/// from the gate on a busy machine.
inline constexpr int64_t kStartLead = 1'000'000;

/// Run fn(k) on one thread per worker k, from the crew's origin on, while the calling thread
/// calls the hook between chunks, then join them all. Returns true when the hook asked to
/// stop. Whatever a worker or the hook throws is rethrown here once every thread has joined.
template <class Fn>
bool run_on_threads(size_t count, Fn&& fn, Crew& crew, int64_t chunk_ns, const ChunkHook& hook) {
  std::atomic<int> running{static_cast<int>(count)};
  std::vector<std::thread> threads;
  threads.reserve(count);
  auto join_all = [&] {
    for (std::thread& t : threads) t.join();
  };
  bool interrupted = false;
  try {
    for (size_t k = 0; k < count; ++k) {
      threads.emplace_back([&fn, &running, &crew, k] {
        try {
          if (crew.arrive()) fn(k);
        } catch (...) {
          crew.fail(std::current_exception());
        }
        running.fetch_sub(1);
      });
    }
    crew.open(kStartLead);
    interrupted = coordinate(running, crew, chunk_ns, hook);
  } catch (...) {  // a thread could not start, or the hook threw: stop and join the others
    crew.request_stop();
    join_all();
    throw;
  }
  join_all();
  crew.rethrow();
  return interrupted;
}

}  // namespace inferspeed
