#include "inferspeed/scenarios.hpp"

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "inferspeed/clock.hpp"
#include "inferspeed/crew.hpp"
#include "inferspeed/error.hpp"
#include "inferspeed/interrupt.hpp"

namespace inferspeed {

namespace {

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
