// The clock every measurement uses: CLOCK_MONOTONIC in nanoseconds (a vDSO call, no syscall).
#pragma once

#include <cstdint>
#include <ctime>

namespace inferspeed {

/// Monotonic time in nanoseconds. Inline so the timed loops pay only the vDSO call.
inline int64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<int64_t>(ts.tv_nsec);
}

/// What the clock itself costs and resolves, measured on this machine now.
struct ClockInfo {
  int64_t overhead_ns;       ///< median cost of one timed region that contains nothing
  int64_t min_delta_ns;      ///< smallest non-zero difference seen between two reads
  int64_t resolution_ns;     ///< clock_getres(CLOCK_MONOTONIC)
  int64_t samples;           ///< pairs of reads the figures come from
};

/// Measure the clock with `pairs` back-to-back pairs of reads.
ClockInfo measure_clock(int64_t pairs = 200000);

}  // namespace inferspeed
