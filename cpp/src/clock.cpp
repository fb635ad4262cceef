#include "inferspeed/clock.hpp"

#include <algorithm>
#include <vector>

namespace inferspeed {

ClockInfo measure_clock(int64_t pairs) {
  if (pairs < 1) pairs = 1;
  std::vector<int64_t> deltas(static_cast<size_t>(pairs));
  // The same shape as a timed iteration of the loops: read, (nothing), read, store.
  for (auto& d : deltas) {
    const int64_t t0 = now_ns();
    const int64_t t1 = now_ns();
    d = t1 - t0;
  }
  ClockInfo info{};
  info.samples = pairs;
  int64_t min_nonzero = 0;
  for (const int64_t d : deltas) {
    if (d > 0 && (min_nonzero == 0 || d < min_nonzero)) min_nonzero = d;
  }
  info.min_delta_ns = min_nonzero;
  const auto mid = deltas.begin() + static_cast<std::ptrdiff_t>(deltas.size() / 2);
  std::nth_element(deltas.begin(), mid, deltas.end());
  info.overhead_ns = *mid;
  timespec res{};
  clock_getres(CLOCK_MONOTONIC, &res);
  info.resolution_ns = static_cast<int64_t>(res.tv_sec) * 1'000'000'000 + res.tv_nsec;
  return info;
}

}  // namespace inferspeed
