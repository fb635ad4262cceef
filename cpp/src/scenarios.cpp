#include "inferspeed/scenarios.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
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

// One call on the worker's current input set (the caller advances it after its clock read).
inline OrtStatus* call_once(const CallHandles& h, CallMode mode, Worker& w) noexcept {
  if (mode == CallMode::binding) return h.api->RunWithBinding(h.session, h.run_options, w.bindings[w.set].get());
  return h.api->Run(h.session, h.run_options, h.input_names, h.input_values[w.set], h.input_count, h.output_names,
                    h.output_count, w.run_outputs.data());
}

inline void release_run_outputs(const CallHandles& h, Worker& w) noexcept {
  for (OrtValue*& v : w.run_outputs) {
    if (v != nullptr) h.api->ReleaseValue(v);
    v = nullptr;
  }
}

// The first failed status of any worker; the others are released, and so is the first when
// nobody takes it (a worker's exception wins over it).
class FirstError {
 public:
  explicit FirstError(const OrtApi* api) : api_(api) {}
  FirstError(const FirstError&) = delete;
  FirstError& operator=(const FirstError&) = delete;
  ~FirstError() {
    if (status_ != nullptr) api_->ReleaseStatus(status_);
  }
  void set(OrtStatus* status) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_ == nullptr) {
      status_ = status;
    } else {
      api_->ReleaseStatus(status);
    }
  }
  OrtStatus* take() noexcept { return std::exchange(status_, nullptr); }

 private:
  const OrtApi* api_;
  std::mutex mutex_;
  OrtStatus* status_ = nullptr;
};

// What the coordinating thread and the workers of one scenario share: the start gate (the
// workers wait until every one of them is running, then the coordinator fixes the time
// origin), the stop request, and the first exception a worker threw. One mutex and condition
// variable serve all: a stop wakes a worker sleeping until its next arrival at once.
class Crew {
 public:
  explicit Crew(size_t count) : count_(count) {}

  bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }
  void request_stop() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
    }
    cv_.notify_all();
  }

  // Worker side of the gate: say it is running, wait for the origin. False: stop instead.
  bool arrive() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (++ready_ == count_) ready_ns_ = now_ns();
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_ || stop_.load(); });
    return !stop_.load();
  }
  // Coordinator side: once every worker is running, the origin is `lead_ns` from now.
  void open(int64_t lead_ns) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return ready_ == count_ || stop_.load(); });
      origin_ = now_ns() + lead_ns;
      open_ = true;
    }
    cv_.notify_all();
  }
  int64_t origin() const noexcept { return origin_; }  // read after open()/arrive() only
  int64_t ready_ns() const noexcept { return ready_ns_; }  // when the last worker was running

  // Sleep until `target_ns` on the monotonic clock, waking `spin_ns` early to spin the rest of
  // the way (the kernel's wake-up is tens of microseconds late, a spin is not). Returns early
  // on a stop.
  void wait_until(int64_t target_ns, int64_t spin_ns) {
    const int64_t sleep_to = target_ns - spin_ns;
    if (sleep_to > now_ns()) {
      // steady_clock is CLOCK_MONOTONIC, the clock of now_ns().
      const std::chrono::steady_clock::time_point until{std::chrono::nanoseconds(sleep_to)};
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait_until(lock, until, [this] { return stop_.load(); });
    }
    while (now_ns() < target_ns) {
      if (stopping()) return;
      cpu_relax();
    }
  }

  // A worker threw: keep the first exception and stop everyone.
  void fail(std::exception_ptr e) noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::move(e);
    }
    request_stop();
  }
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

// Wait for `running` to reach zero, calling the hook every chunk_ns; a false from the hook
// asks the crew to stop. Returns true when the hook asked to stop.
bool coordinate(const std::atomic<int>& running, Crew& crew, int64_t chunk_ns, const ChunkHook& between_chunks) {
  bool interrupted = false;
  int64_t next_hook = now_ns() + chunk_ns;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (now_ns() >= next_hook) {
      next_hook = now_ns() + chunk_ns;
      if (!interrupted && between_chunks && !between_chunks()) {
        interrupted = true;
        crew.request_stop();
      }
    }
  }
  return interrupted;
}

// Time the workers' threads have, once all are running, before the origin: enough to wake
// from the gate on a busy machine.
constexpr int64_t kStartLead = 1'000'000;

// Run fn(k) on one thread per worker k, from the crew's origin on, while the calling thread
// calls the hook between chunks, then join them all. Returns true when the hook asked to
// stop. Whatever a worker or the hook throws is rethrown here once every thread has joined.
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
  Crew crew(workers.size());
  FirstError error(h.api);
  const TerminateOnSigint guard(h.api, h.run_options);

  auto serve = [&](size_t index) {
    Worker& w = *workers[index];
    const int64_t origin = crew.origin();  // fixed once every worker's thread is running
    while (!crew.stopping()) {
      const size_t i = next.fetch_add(1);
      if (i >= n) break;
      const int64_t arrival = origin + spec.arrivals_ns[i];
      const bool waited = now_ns() < arrival;
      if (waited) crew.wait_until(arrival, spec.spin_ns);
      if (crew.stopping()) break;
      const int64_t t0 = now_ns();
      OrtStatus* st = call_once(h, spec.mode, w);
      const int64_t t1 = now_ns();
      if (spec.mode == CallMode::run) release_run_outputs(h, w);
      w.advance();
      r.start_ns[i] = t0 - origin;
      r.end_ns[i] = t1 - origin;
      r.worker[i] = static_cast<int32_t>(index);
      r.waited[i] = waited ? 1 : 0;
      if (st != nullptr) {
        if (guard.fired()) r.start_ns[i] = r.end_ns[i] = -1;  // abandoned on Ctrl-C: not served
        error.set(st);
        crew.request_stop();
        break;
      }
    }
  };

  r.interrupted = run_on_threads(workers.size(), serve, crew, spec.chunk_ns, between_chunks);
  r.origin_ns = crew.origin();
  r.ready_ns = crew.ready_ns();
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
  Crew crew(workers.size());
  FirstError error(h.api);
  const TerminateOnSigint guard(h.api, h.run_options);

  auto work = [&](size_t index) {
    Worker& w = *workers[index];
    std::vector<int64_t>& starts = r.start_ns[index];
    std::vector<int64_t>& ends = r.end_ns[index];
    const int64_t origin = crew.origin();
    const int64_t end_by = origin > INT64_MAX - spec.duration_ns ? INT64_MAX : origin + spec.duration_ns;
    crew.wait_until(origin, 200'000);
    while (!crew.stopping()) {
      const int64_t t0 = now_ns();
      OrtStatus* st = call_once(h, spec.mode, w);
      const int64_t t1 = now_ns();
      if (spec.mode == CallMode::run) release_run_outputs(h, w);
      w.advance();
      // push_back grows the buffer now and then: after the clock read, never inside a call.
      starts.push_back(t0 - origin);
      ends.push_back(t1 - origin);
      if (st != nullptr) {
        if (guard.fired()) {  // abandoned on Ctrl-C: not a latency
          starts.pop_back();
          ends.pop_back();
        }
        error.set(st);
        crew.request_stop();
        break;
      }
      if (t1 >= end_by) break;
    }
  };

  r.interrupted = run_on_threads(workers.size(), work, crew, spec.chunk_ns, between_chunks);
  r.origin_ns = crew.origin();
  r.elapsed_ns = now_ns() - r.origin_ns;
  if (finish_with_error(session, error, guard, between_chunks)) r.interrupted = true;
  return r;
}

}  // namespace inferspeed
