#include "inferspeed/crew.hpp"

#include <chrono>

#include "inferspeed/clock.hpp"

namespace inferspeed {

void Crew::request_stop() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  cv_.notify_all();
}

bool Crew::arrive() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (++ready_ == count_) ready_ns_ = now_ns();
  cv_.notify_all();
  cv_.wait(lock, [this] { return open_ || stop_.load(); });
  return !stop_.load();
}

void Crew::open(int64_t lead_ns) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return ready_ == count_ || stop_.load(); });
    origin_ = now_ns() + lead_ns;
    open_ = true;
  }
  cv_.notify_all();
}

void Crew::wait_until(int64_t target_ns, int64_t spin_ns) {
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

void Crew::fail(std::exception_ptr e) noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::move(e);
  }
  request_stop();
}

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

}  // namespace inferspeed
