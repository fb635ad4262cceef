"""Is B faster than A? Measured interleaved in one process, then compared with significance.

python examples/compare_two.py A.onnx B.onnx
(without arguments: a 3-layer and a 6-layer MLP made on the spot)
"""

import sys
import tempfile
from pathlib import Path

import onnx

import inferspeed
from inferspeed.measure.interleave import measure_interleaved

if len(sys.argv) == 3:
    a, b = sys.argv[1], sys.argv[2]
else:
    from inferspeed.facts.models import mlp_model

    folder = Path(tempfile.mkdtemp())
    a, b = str(folder / "mlp3.onnx"), str(folder / "mlp6.onnx")
    onnx.save(mlp_model(layers=3), a)
    onnx.save(mlp_model(layers=6), b)

config = inferspeed.Config(threads=1, max_time=1.0)
with inferspeed.Session(a, config) as sa, inferspeed.Session(b, config) as sb:
    ra, rb = measure_interleaved([sa, sb], rounds=30, config=config, order="random").results
# The results carry their pairing (loop["interleave"]): the comparison is paired over rounds.
c = inferspeed.compare(ra, rb, baseline_label=a, candidate_label=b)
lo, hi = c.ratio_median_ci
print(
    f"{b} / {a}: median ratio {c.ratio_median:.3f} (95% CI {lo:.3f}-{hi:.3f}), p={c.p_value:.2g}: {c.verdict}"
)
