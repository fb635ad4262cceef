#include "inferspeed/scenarios.hpp"

#include <time.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include "inferspeed/clock.hpp"
#include "inferspeed/error.hpp"
#include "inferspeed/interrupt.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace inferspeed {

namespace {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Sleep until `target_ns` on the monotonic clock, waking `spin_ns` early to spin the rest of
// the way: the kernel's wake-up is tens of microseconds late, a spin is not.
void wait_until(int64_t target_ns, int64_t spin_ns, const std::atomic<bool>& stop) noexcept {
  const int64_t sleep_to = target_ns - spin_ns;
  if (sleep_to > now_ns()) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(sleep_to / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(sleep_to % 1'000'000'000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) != 0) {
      if (stop.load(std::memory_order_relaxed)) return;
    }
  }
  while (now_ns() < target_ns) {
    if (stop.load(std::memory_order_relaxed)) return;
    cpu_relax();
  }
}

inline OrtStatus* call_once(const CallHandles& h, CallMode mode, Worker& w) noexcept {
  if (mode == CallMode::binding) return h.api->RunWithBinding(h.session, h.run_options, w.binding.get());
  return h.api->Run(h.session, h.run_options, h.input_names, h.input_values[w.set], h.input_count, h.output_names,
                    h.output_count, w.run_outputs.data());
}

inline void release_run_outputs(const CallHandles& h, Worker& w) noexcept {
  for (OrtValue*& v : w.run_outputs) {
    if (v != nullptr) h.api->ReleaseValue(v);
    v = nullptr;
  }
}

// The first failed status of any worker; the others are released.
class FirstError {
 public:
  void set(const OrtApi* api, OrtStatus* status) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_ == nullptr) {
      status_ = status;
    } else {
      api->ReleaseStatus(status);
    }
  }
  OrtStatus* take() noexcept { return std::exchange(status_, nullptr); }

 private:
  std::mutex mutex_;
  OrtStatus* status_ = nullptr;
};

// Wait for `running` to reach zero, calling the hook every chunk_ns; a false from the hook
// sets `stop`. Returns true when the hook asked to stop.
bool coordinate(const std::atomic<int>& running, std::atomic<bool>& stop, int64_t chunk_ns,
                const ChunkHook& between_chunks) {
  bool interrupted = false;
  int64_t next_hook = now_ns() + chunk_ns;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (now_ns() >= next_hook) {
      next_hook = now_ns() + chunk_ns;
      if (!interrupted && between_chunks && !between_chunks()) {
        interrupted = true;
        stop.store(true);
      }
    }
  }
  return interrupted;
}

// Run fn(k) on one thread per worker k while the calling thread calls the hook between
// chunks (a false from it sets `stop`) and then joins them all. Returns true when the hook
// asked to stop.
template <class Fn>
bool run_on_threads(size_t count, Fn&& fn, std::atomic<bool>& stop, int64_t chunk_ns, const ChunkHook& hook) {
  std::atomic<int> running{static_cast<int>(count)};
  std::vector<std::thread> threads;
  threads.reserve(count);
  try {
    for (size_t k = 0; k < count; ++k) {
      threads.emplace_back([&fn, &running, k] {
        fn(k);
        running.fetch_sub(1);
      });
    }
  } catch (...) {  // a thread could not start: stop and join the ones that did
    stop.store(true);
    for (std::thread& t : threads) t.join();
    throw;
  }
  const bool interrupted = coordinate(running, stop, chunk_ns, hook);
  for (std::thread& t : threads) t.join();
  return interrupted;
}

void check_workers(Session& session, const std::vector<Worker*>& workers) {
  if (workers.empty()) throw std::invalid_argument("at least one worker is needed");
  if (!session.prepared()) throw std::logic_error("session is not prepared: call prepare() first");
  for (const Worker* w : workers) {
    if (w == nullptr) throw std::invalid_argument("null worker");
  }
}

// After the workers joined: a worker's failed call throws as OrtError, unless Ctrl-C made ORT
// abandon it (then true: the run was interrupted; the caller's pending Ctrl-C is consumed too).
bool finish_with_error(Session& session, FirstError& error, const TerminateOnSigint& guard,
                       const ChunkHook& between_chunks) {
  OrtStatus* st = error.take();
  if (st == nullptr) return false;
  if (!guard.fired()) session.runtime().check(st);  // throws
  session.runtime().api().ReleaseStatus(st);
  if (between_chunks) between_chunks();
  return true;
}

}  // namespace

ServerResult run_server(Session& session, const std::vector<Worker*>& workers, const ServerSpec& spec,
                        const ChunkHook& between_chunks) {
  check_workers(session, workers);
  const CallHandles h = session.handles();
  const size_t n = spec.arrivals_ns.size();
  ServerResult r;
  r.start_ns.assign(n, -1);
  r.end_ns.assign(n, -1);
  r.worker.assign(n, -1);
  r.waited.assign(n, 0);
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  FirstError error;
  const TerminateOnSigint guard(h.api, h.run_options);
  // Start a little in the future, so every thread is up before the first arrival.
  r.origin_ns = now_ns() + 5'000'000;
  const int64_t origin = r.origin_ns;

  auto serve = [&](size_t index) {
    Worker& w = *workers[index];
    while (!stop.load(std::memory_order_relaxed)) {
      const size_t i = next.fetch_add(1);
      if (i >= n) break;
      const int64_t arrival = origin + spec.arrivals_ns[i];
      const bool waited = now_ns() < arrival;
      if (waited) wait_until(arrival, spec.spin_ns, stop);
      if (stop.load(std::memory_order_relaxed)) break;
      const int64_t t0 = now_ns();
      OrtStatus* st = call_once(h, spec.mode, w);
      const int64_t t1 = now_ns();
      if (spec.mode == CallMode::run) release_run_outputs(h, w);
      r.start_ns[i] = t0 - origin;
      r.end_ns[i] = t1 - origin;
      r.worker[i] = static_cast<int32_t>(index);
      r.waited[i] = waited ? 1 : 0;
      if (st != nullptr) {
        if (guard.fired()) r.start_ns[i] = r.end_ns[i] = -1;  // abandoned on Ctrl-C: not served
        error.set(h.api, st);
        stop.store(true);
        break;
      }
    }
  };

  r.interrupted = run_on_threads(workers.size(), serve, stop, spec.chunk_ns, between_chunks);
  if (finish_with_error(session, error, guard, between_chunks)) r.interrupted = true;
  return r;
}

OfflineResult run_offline(Session& session, const std::vector<Worker*>& workers, const OfflineSpec& spec,
                          const ChunkHook& between_chunks) {
  check_workers(session, workers);
  if (spec.duration_ns <= 0) throw std::invalid_argument("duration must be positive");
  const CallHandles h = session.handles();
  OfflineResult r;
  r.start_ns.resize(workers.size());
  r.end_ns.resize(workers.size());
  const size_t hint = spec.expected_per_worker > 0 ? static_cast<size_t>(spec.expected_per_worker) : 4096;
  for (size_t k = 0; k < workers.size(); ++k) {
    r.start_ns[k].reserve(hint);
    r.end_ns[k].reserve(hint);
  }
  std::atomic<bool> stop{false};
  FirstError error;
  const TerminateOnSigint guard(h.api, h.run_options);
  r.origin_ns = now_ns() + 5'000'000;
  const int64_t origin = r.origin_ns;
  const int64_t end_by = origin + spec.duration_ns;

  auto work = [&](size_t index) {
    Worker& w = *workers[index];
    std::vector<int64_t>& starts = r.start_ns[index];
    std::vector<int64_t>& ends = r.end_ns[index];
    wait_until(origin, 200'000, stop);
    while (!stop.load(std::memory_order_relaxed)) {
      const int64_t t0 = now_ns();
      OrtStatus* st = call_once(h, spec.mode, w);
      const int64_t t1 = now_ns();
      if (spec.mode == CallMode::run) release_run_outputs(h, w);
      // push_back grows the buffer now and then: after the clock read, never inside a call.
      starts.push_back(t0 - origin);
      ends.push_back(t1 - origin);
      if (st != nullptr) {
        if (guard.fired()) {  // abandoned on Ctrl-C: not a latency
          starts.pop_back();
          ends.pop_back();
        }
        error.set(h.api, st);
        stop.store(true);
        break;
      }
      if (t1 >= end_by) break;
    }
  };

  r.interrupted = run_on_threads(workers.size(), work, stop, spec.chunk_ns, between_chunks);
  r.elapsed_ns = now_ns() - origin;
  if (finish_with_error(session, error, guard, between_chunks)) r.interrupted = true;
  return r;
}

}  // namespace inferspeed
