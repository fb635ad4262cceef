#include "inferspeed/probe.hpp"

#include <array>
#include <cstddef>

#include "inferspeed/clock.hpp"

namespace inferspeed {

namespace {

constexpr std::size_t kDim = 64;

// The fixed matrix and start vector: small values from an integer hash, the same on every
// machine and every call, so every probe does the same arithmetic on the same numbers.
struct ProbeData {
  std::array<float, kDim * kDim> a{};
  std::array<float, kDim> b{};
  ProbeData() {
    std::uint32_t h = 2463534242u;
    auto next = [&h] {
      h ^= h << 13;
      h ^= h >> 17;
      h ^= h << 5;
      // In [-1, 1) / kDim: the iteration below is a contraction, so its values stay normal
      // floats (no overflow, no denormals, whose slow paths would time something else).
      return (static_cast<float>(h % 2048u) / 1024.0f - 1.0f) / static_cast<float>(kDim);
    };
    for (auto& v : a) v = next();
    for (auto& v : b) v = 0.5f + next();
  }
};

const ProbeData& probe_data() {
  static const ProbeData data;
  return data;
}

// kProbeSteps steps of x <- 0.5 A x + b. Each step depends on the one before and the result is
// returned, so the compiler can neither drop nor overlap the work; the inner loop over i is
// element-wise (no reduction), which the compiler vectorizes as it would a model's MatMul.
float workload(const ProbeData& d, float start) {
  std::array<float, kDim> x = d.b;
  x[0] += start;
  std::array<float, kDim> y{};
  for (int step = 0; step < kProbeSteps; ++step) {
    y.fill(0.0f);
    for (std::size_t j = 0; j < kDim; ++j) {
      const float xj = x[j];
      const float* row = &d.a[j * kDim];
      for (std::size_t i = 0; i < kDim; ++i) y[i] += row[i] * xj;
    }
    for (std::size_t i = 0; i < kDim; ++i) x[i] = 0.5f * y[i] + d.b[i];
  }
  float sum = 0.0f;
  for (const float v : x) sum += v;
  return sum;
}

}  // namespace

std::vector<int64_t> speed_probe(int64_t repeats) {
  if (repeats < 1) repeats = 1;
  const ProbeData& data = probe_data();
  std::vector<int64_t> out(static_cast<std::size_t>(repeats));
  // Read before and written after every probe: the compiler can neither hoist the work out of
  // the loop (its input is unknown until read) nor remove it (its result is stored).
  volatile float zero = 0.0f;
  volatile float sink = 0.0f;
  for (auto& t : out) {
    const float start = zero;
    const int64_t t0 = now_ns();
    const float r = workload(data, start);
    const int64_t t1 = now_ns();
    sink = sink + r;
    t = t1 - t0;
  }
  return out;
}

}  // namespace inferspeed
