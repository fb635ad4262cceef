"""How much of the profiled model time `inferspeed profile` accounts for, on MLPs of several sizes.

For each MLP (Gemm+Relu layers, built with ``inferspeed.facts.models.mlp_model``) and each repeat,
it runs ``inferspeed profile MODEL --json`` in a fresh process, as a user would, and reads:

- the top operator type and its share;
- per-type totals / profiled model time: the sum of ``by_op_type[].total_us`` over
  ``model_time_us`` (the sum of ORT's ``model_run`` durations of the timed calls);
- the kernels' share alone (``kernel_share``), without the executor's dispatch;
- the profiling overhead (profiled median / unprofiled median - 1).

It prints the median and range over the repeats. Usage::

    python bench/profile_accounting.py                 # 3 repeats, 1 s each, about 2 minutes
    python bench/profile_accounting.py --repeats 5 --max-time 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx

from inferspeed.facts.models import mlp_model

#: (layers, width, batch, graph optimization level)
MLPS = [
    (3, 64, 1, "all"),
    (3, 256, 1, "all"),
    (3, 512, 8, "all"),
    (3, 512, 8, "disable"),
    (3, 512, 32, "all"),
    (4, 1024, 8, "all"),
    (6, 256, 16, "all"),
    (12, 128, 4, "all"),
]


def profile_once(path: str, opt: str, max_time: float, threads: int, folder: str) -> dict:
    out = os.path.join(folder, "p.json")
    cmd = [sys.executable, "-m", "inferspeed", "profile", path, "--opt-level", opt, "-t", str(max_time)]
    cmd += ["--threads", str(threads), "--json", out, "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "INFERSPEED_PLAIN": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    with open(out, encoding="utf-8") as f:
        return json.load(f)["results"][0]["profile"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-time", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(
        f"inferspeed profile, {args.repeats} repeats of {args.max_time} s, {args.threads} intra-op thread(s)"
    )
    print(
        f"{'MLP':<22} {'top op type (share)':<26} {'per-type totals':>22} {'kernels alone':>20} "
        f"{'overhead':>16}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for layers, width, batch, opt in MLPS:
            path = os.path.join(folder, f"mlp_{layers}x{width}_b{batch}.onnx")
            onnx.save(mlp_model(layers=layers, width=width, batch=batch), path)
            totals, kernels, overheads, tops = [], [], [], []
            for _ in range(args.repeats):
                pr = profile_once(path, opt, args.max_time, args.threads, folder)
                totals.append(sum(r["total_us"] for r in pr["by_op_type"]) / pr["model_time_us"])
                kernels.append(pr["kernel_share"])
                overheads.append(pr["profiling_overhead"])
                top = pr["by_op_type"][0]
                tops.append(f"{top['op_type']} ({top['share']:.0%})")

            def cell(v: list[float], signed: bool = False) -> str:
                a = np.array(v) * 100
                f = "+.0f" if signed else ".1f"
                return f"{np.median(a):{f}}% ({a.min():{f}}–{a.max():{f}})"

            name = f"{layers}x{width} b{batch} opt={opt}"
            print(
                f"{name:<22} {tops[len(tops) // 2]:<26} {cell(totals):>22} {cell(kernels):>20} "
                f"{cell(overheads, True):>16}"
            )


if __name__ == "__main__":
    main()
