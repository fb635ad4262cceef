#include "inferspeed/flush.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace inferspeed {

namespace {

size_t cache_line_bytes() {
#ifdef _SC_LEVEL1_DCACHE_LINESIZE
  const long line = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
  if (line >= 16 && line <= 1024) return static_cast<size_t>(line);
#endif
  return 64;
}

// What each helper reads: four times a core's private L2, and at least 4 MiB (a VM may
// report a smaller L2 than the core has: 512 KiB for a 1 MiB one was seen).
size_t private_cache_walk_bytes() {
  long l2 = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
  l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
  if (l2 <= 0 || l2 > (long{1} << 28)) l2 = 0;
  return std::max(size_t{4} << 20, 4 * static_cast<size_t>(l2));
}

// The CPUs the calling thread may run on (empty when that cannot be read).
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

}  // namespace

CacheFlusher::CacheFlusher(size_t bytes, size_t line_bytes, bool every_cpu)
    : bytes_(bytes), line_(line_bytes != 0 ? line_bytes : cache_line_bytes()) {
  if (bytes_ == 0) throw std::invalid_argument("cache flush buffer must not be empty");
  buffer_.reset(new unsigned char[bytes_]);
  // Touch every page now, so the first flush does not also pay the page faults.
  for (size_t i = 0; i < bytes_; i += line_) buffer_[i] = 0;
  if (!every_cpu) return;
  cpus_ = allowed_cpus();
  if (cpus_.empty()) return;
  private_bytes_ = private_cache_walk_bytes();
  shared_.reset(new unsigned char[private_bytes_]);
  for (size_t i = 0; i < private_bytes_; i += line_) shared_[i] = 1;
  try {
    for (int cpu : cpus_) helpers_.emplace_back([this, cpu] { help(cpu); });
  } catch (...) {
    stop_helpers();
    throw;
  }
  // Wait until every helper is pinned and asleep: the first flush then finds them all ready.
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return started_ == helpers_.size(); });
}

CacheFlusher::~CacheFlusher() { stop_helpers(); }

void CacheFlusher::stop_helpers() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : helpers_) {
    if (t.joinable()) t.join();
  }
  helpers_.clear();
}

void CacheFlusher::help(int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // Best effort: a CPU taken away since the mask was read leaves the helper unpinned.
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  std::unique_lock<std::mutex> lock(mutex_);
  ++started_;
  done_.notify_all();
  uint64_t seen = generation_;
  for (;;) {
    wake_.wait(lock, [&] { return quit_ || generation_ != seen; });
    if (quit_) return;
    seen = generation_;
    lock.unlock();
    // Read every line: this core's L1 and L2 then hold the shared buffer, nothing of the model.
    const volatile unsigned char* p = shared_.get();
    unsigned sum = 0;
    for (size_t i = 0; i < private_bytes_; i += line_) sum += p[i];
    lock.lock();
    ++finished_;
    sink_ += sum;
    done_.notify_all();
  }
}

void CacheFlusher::flush() noexcept {
  if (!helpers_.empty()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++generation_;
      finished_ = 0;
    }
    wake_.notify_all();
  }
  // volatile: the stores must really happen although nobody reads the buffer afterwards.
  volatile unsigned char* p = buffer_.get();
  for (size_t i = 0; i < bytes_; i += line_) p[i] = static_cast<unsigned char>(p[i] + 1);
  if (helpers_.empty()) return;
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return finished_ == helpers_.size(); });
}

}  // namespace inferspeed
