"""Benchmark a model: its latency distribution, with intervals and warnings.

python examples/benchmark_model.py [MODEL.onnx]     # default: the demo model
"""

import sys

import inferspeed
from inferspeed.facts.models import demo_model_path
from inferspeed.report.text import render_result

model = sys.argv[1] if len(sys.argv) > 1 else demo_model_path()
result = inferspeed.benchmark(model, threads=1, max_time=1.0)
print(render_result(result))
lo, hi = result.stats.ci95_median_ns
print(f"\nmedian {result.stats.median_ns / 1e3:.2f} us (95% CI {lo / 1e3:.2f}-{hi / 1e3:.2f} us)")
for w in result.warnings:
    print(f"[{w.code}] {w.details}")
result.to_json("result.json")  # for inferspeed compare / report
