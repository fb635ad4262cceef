// Cache eviction for cold-cache measurements: walk a buffer larger than the last-level cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace inferspeed {

/// Evicts the CPU caches by writing one byte of every cache line of a private buffer.
/// Size it at least twice the last-level cache: a read-modify-write of every line pushes the
/// model's weights, inputs and outputs out of every level (and leaves the lines dirty, so
/// the next access also pays the write-back an idle-then-called model would).
class CacheFlusher {
 public:
  /// `bytes` of buffer, walked in steps of `line_bytes` (0: the L1 line size, or 64).
  explicit CacheFlusher(size_t bytes, size_t line_bytes = 0);
  CacheFlusher(const CacheFlusher&) = delete;
  CacheFlusher& operator=(const CacheFlusher&) = delete;

  /// Walk the whole buffer once. Not timed by the loops: call it outside the timed region.
  void flush() noexcept;
  size_t bytes() const noexcept { return bytes_; }
  size_t line_bytes() const noexcept { return line_; }

 private:
  size_t bytes_;
  size_t line_;
  std::unique_ptr<unsigned char[]> buffer_;
};

}  // namespace inferspeed
