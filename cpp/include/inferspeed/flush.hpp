// Cache eviction for cold-cache measurements: walk a buffer larger than the last-level cache,
// and make every CPU this process may run on read one larger than its private caches.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace inferspeed {

/// Evicts the CPU caches before a cold-cache call.
///
/// The calling thread writes one byte of every cache line of a private buffer: size it at
/// least twice the last-level cache, so the read-modify-write of every line pushes the
/// model's weights, inputs and outputs out of the shared cache and of the calling core's
/// private caches (and leaves the lines dirty, so the next access also pays the write-back an
/// idle-then-called model would). The private caches (L1, L2) of the other cores, where an
/// ONNX Runtime pool thread keeps its share of the weights, are not its to walk: a machine
/// whose cache directory back-invalidates them (the AMD EPYC VM this was built on) loses them
/// anyway, another need not. So, with `every_cpu`, one helper thread pinned to each CPU the
/// constructing thread may run on reads every line of a buffer four times the size of a
/// private L2 (4 MiB at least) at the same time; flush() returns once all have finished. The
/// helpers sleep (on a condition variable) between flushes: no CPU time while a call is
/// timed. Not thread-safe: one flusher per measuring thread.
class CacheFlusher {
 public:
  /// `bytes` of buffer, walked in steps of `line_bytes` (0: the L1 line size, or 64);
  /// `every_cpu`: also evict the private caches of every CPU in the affinity mask.
  explicit CacheFlusher(size_t bytes, size_t line_bytes = 0, bool every_cpu = true);
  ~CacheFlusher();
  CacheFlusher(const CacheFlusher&) = delete;
  CacheFlusher& operator=(const CacheFlusher&) = delete;

  /// Evict once. Not timed by the loops: they call it outside the timed region.
  void flush() noexcept;
  size_t bytes() const noexcept { return bytes_; }
  size_t line_bytes() const noexcept { return line_; }
  /// The CPUs whose private caches each flush evicts with a helper (empty without every_cpu).
  const std::vector<int>& cpus() const noexcept { return cpus_; }
  /// Size of the buffer the helpers read.
  size_t private_bytes() const noexcept { return private_bytes_; }

 private:
  void help(int cpu) noexcept;
  void stop_helpers() noexcept;

  size_t bytes_;
  size_t line_;
  std::unique_ptr<unsigned char[]> buffer_;
  size_t private_bytes_ = 0;
  std::unique_ptr<unsigned char[]> shared_;  // read by every helper
  std::vector<int> cpus_;
  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;  // flushes asked for
  size_t finished_ = 0;      // helpers done with the current one
  size_t started_ = 0;       // helpers running (all pinned) since construction
  bool quit_ = false;
  unsigned sink_ = 0;        // what the helpers read, so the reads are not optimised away
};

}  // namespace inferspeed
