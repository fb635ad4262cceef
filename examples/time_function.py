"""Time any Python function in inferspeed's C++ loop: per-call samples and statistics, the
loop's own overhead reported, a batched mode for nanosecond-scale work.

    python examples/time_function.py
"""

import numpy as np

import inferspeed

x = np.random.default_rng(0).random((256, 256), dtype=np.float32)
r = inferspeed.timeit(np.dot, x, x, max_time=0.5)
print(f"np.dot 256x256: median {r.stats.median_ns / 1e3:.1f} us, p99 {r.stats.p99_ns / 1e3:.1f} us")
print(f"loop overhead (an empty callable): {r.loop['loop_overhead_ns']:.0f} ns per call")

small = inferspeed.timeit(abs, -3, batch=1000, max_time=0.3)
print(f"abs(-3): {small.stats.median_ns:.0f} ns per call (1000 calls per clock-read pair)")
