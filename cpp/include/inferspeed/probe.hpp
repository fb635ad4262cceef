// The machine-speed probe: a fixed, small, compute-bound workload timed on the calling thread.
// Its time moves only when the machine's speed does (frequency, a hypervisor sharing the core,
// a sibling hyper-thread), so readings of it between slices of a run tell how the machine's
// speed moved while the model was measured (inferspeed.measure.monitor).
#pragma once

#include <cstdint>
#include <vector>

namespace inferspeed {

/// Steps of the workload in one probe (each a 64x64 single-precision matrix-vector product):
/// 30-50 µs on a 2020s x86 core. Fixed: readings are compared across runs and sessions.
inline constexpr int kProbeSteps = 128;

/// Time `repeats` probes (at least one), one after another; the nanoseconds of each.
std::vector<int64_t> speed_probe(int64_t repeats);

}  // namespace inferspeed
