"""How much do separate runs of one model differ on this machine?

Runs ``inferspeed run MODEL --json`` N times, each in a fresh process, exactly as a user would,
then compares consecutive runs (1 with 2, 3 with 4, ...) with ``inferspeed.compare``. Prints,
for each pair, the ratio of medians, how its interval was found, the machine variation the runs
saw and the verdict under each threshold; then, over all pairs of runs, how often the verdict is
"no significant difference", and how often the median ratio alone is beyond the threshold
(what a comparison of the samples alone calls a difference: with thousands of samples, any
such difference is significant). This is the figure behind compare's default noise threshold
(docs/compare.md).

    python bench/run_to_run.py                       # 20 runs of an MLP 3x512, batch 8, 1 thread
    python bench/run_to_run.py --runs 10 --model m.onnx -- --threads 2 --max-time 1
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import inferspeed
from inferspeed.facts.models import mlp_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="separate runs (even; default 20)")
    parser.add_argument("--model", help="ONNX model (default: MLP 3x512, batch 8)")
    parser.add_argument("--thresholds", default="0.02,0.03,0.05", help="noise thresholds to judge by")
    parser.add_argument("--keep", help="keep the runs' JSON files in this folder")
    parser.add_argument("run_args", nargs="*", help="extra arguments for inferspeed run (after --)")
    args = parser.parse_args()
    run_args = args.run_args or ["--threads", "1"]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        model = args.model
        if model is None:
            import onnx

            model = str(Path(tmp) / "mlp3.onnx")
            onnx.save(mlp_model(layers=3, width=512, batch=8), model)
        print(f"model {model}; inferspeed run {' '.join(run_args)}; {args.runs} runs", flush=True)
        results = []
        for i in range(args.runs):
            out = folder / f"run{i:02d}.json"
            cmd = [sys.executable, "-m", "inferspeed", "run", model, *run_args, "--json", str(out), "--quiet"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            r = inferspeed.load_json(out)[0]
            results.append(r)
            print(f"run {i + 1:2d}: median {r.stats.median_ns / 1e3:9.2f} us", flush=True)
    short = {"no significant difference": "same", "slower": "slower", "faster": "faster"}
    print(
        f"\n{'pair':>5} {'ratio':>7} {'method':>18} {'variation':>9}  "
        + "  ".join(f"{t:>6.0%}" for t in thresholds)
    )
    for k in range(0, len(results) - 1, 2):
        cs = [inferspeed.compare(results[k], results[k + 1], threshold=t) for t in thresholds]
        c = cs[0]
        var = "-" if c.machine_variation is None else f"{c.machine_variation:.1%}"
        print(
            f"{k // 2 + 1:>5} {c.ratio_median:>7.3f} {c.method:>18} {var:>9}  "
            + "  ".join(f"{short[x.verdict]:>6}" for x in cs)
        )
    pairs = list(itertools.combinations(range(len(results)), 2))
    ratios = np.array([results[j].stats.median_ns / results[i].stats.median_ns for i, j in pairs])
    dev = np.abs(np.log(ratios))
    typical, worst = np.expm1(np.median(dev)), np.expm1(dev.max())
    print(f"\nall {len(pairs)} pairs: |median ratio - 1| median {typical:.1%}, max {worst:.1%}")
    for t in thresholds:
        same = sum(
            inferspeed.compare(results[i], results[j], threshold=t).verdict == "no significant difference"
            for i, j in pairs
        )
        alone = int(np.sum(dev <= np.log1p(t)))
        print(
            f"threshold {t:.0%}: 'no significant difference' in {same} of {len(pairs)} pairs "
            f"({same / len(pairs):.0%}); the median ratio alone within the threshold in {alone} "
            f"({alone / len(pairs):.0%})"
        )


if __name__ == "__main__":
    main()
