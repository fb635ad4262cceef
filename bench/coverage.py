"""Does the printed 95% interval of the median hold the median of a later, longer run?

The check that a default run's interval covers a 30 s reference: pairs of (a default
`inferspeed run MODEL`, then a 30 s reference run of the same model, `--max-time 30`), each a
fresh process as a user runs them. A pair counts when the first run's printed 95% interval of
the median (``stats.ci95_median_ns``) contains the reference run's median. Prints each pair,
the count, and the median and range of the first runs' relative half-widths (an interval that
is always ±30% would pass and fail users).

The machine's history (the user's cache, facts/history.py) is part of the interval, so the
script gives the runs a cache folder of their own: a fresh one by default (the first pairs
then have no history, as on a new machine), or --cache-dir to continue one (run 10 pairs, then
10 more with the same folder: the second stretch starts with a history of 20 runs).
--no-history runs every pair with the history off (each default run's interval from the run
alone and the no-history prior).

The summary gives the standard deviation of the ten log ratios (first / reference) and the
bar the interval is held to: a median half-width at most max(3%, 2 x 1.96 x that SD), since
an interval much wider than the runs really scatter is one users learn to ignore. Half-widths
are in the bar's units, half of log(high / low) (±40.0% is -33.0% +49.2% of the median; each
pair's line shows both sides).

    python bench/coverage.py                                  # 20 pairs, MLP 3x512 batch 8
    python bench/coverage.py --pairs 10 --cache-dir /tmp/c    # then again, same folder
    python bench/coverage.py --model m.onnx -- --threads 1    # flags after -- go to both runs

Wrap it in `flock /tmp/bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np


def _run(model: str, extra: list[str], env: dict[str, str], folder: str, name: str) -> dict[str, Any]:
    path = os.path.join(folder, f"{name}.json")
    cmd = [sys.executable, "-m", "inferspeed", "run", model, "--quiet", "--json", path, *extra]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    with open(path, encoding="utf-8") as f:
        result: dict[str, Any] = json.load(f)["results"][0]
    return result


def _default_model(folder: str) -> str:
    import onnx

    from inferspeed.facts import models

    path = os.path.join(folder, "mlp3x512_b8.onnx")
    onnx.save(models.mlp_model(layers=3, width=512, batch=8), path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--model", help="ONNX model (default: an MLP 3x512, batch 8)")
    ap.add_argument("--reference-time", type=float, default=30.0, help="seconds (default 30)")
    ap.add_argument("--cache-dir", help="the runs' cache folder (default: a fresh one)")
    ap.add_argument("--json", help="append each pair's figures here (JSON lines)")
    ap.add_argument("--no-history", action="store_true", help="the history off for every run")
    ap.add_argument("extra", nargs="*", help="flags for both runs, after --")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or _default_model(folder)
        cache = args.cache_dir or os.path.join(folder, "cache")
        env = {
            **os.environ,
            "INFERSPEED_CACHE_DIR": cache,
            "INFERSPEED_HISTORY": "0" if args.no_history else "1",
        }
        env.pop("INFERSPEED_MACHINE", None)
        print(f"history lines before: {_history_lines(cache)}")
        held, widths, logs = 0, [], []
        for i in range(args.pairs):
            first = _run(model, args.extra, env, folder, "first")
            ref = _run(model, [*args.extra, "--max-time", str(args.reference_time)], env, folder, "ref")
            s = first["stats"]
            lo, hi = s["ci95_median_ns"]
            median, ref_median = s["median_ns"], ref["stats"]["median_ns"]
            inside = lo <= ref_median <= hi
            held += inside
            width = math.log(hi / lo) / 2  # in log units, as the bar's SD of log ratios
            widths.append(width)
            logs.append(math.log(median / ref_median))
            over = (first.get("monitor") or {}).get("over_time", {})
            print(
                f"pair {i + 1:2d}: run median {median / 1e3:9.2f} µs, 95% CI {lo / 1e3:.2f}–{hi / 1e3:.2f} "
                f"(±{width:.1%}: {lo / median - 1:+.1%} {hi / median - 1:+.1%}), "
                f"reference {ref_median / 1e3:.2f} µs: {'in' if inside else 'OUT'}"
                f"  [history runs {over.get('history_sessions')}, pairs {over.get('history_pairs')}, "
                f"{over.get('method')}]",
                flush=True,
            )
            if args.json:
                with open(args.json, "a", encoding="utf-8") as f:
                    row = {
                        "median_ns": median,
                        "ci": [lo, hi],
                        "ref_median_ns": ref_median,
                        "over_time": over,
                    }
                    f.write(json.dumps(row) + "\n")
        print(f"history lines after: {_history_lines(cache)}")
    w = np.array(widths)
    sd = float(np.std(logs, ddof=1)) if len(logs) > 1 else 0.0
    print(
        f"contained: {held} of {args.pairs}; half-width median ±{np.median(w):.1%}, "
        f"range ±{w.min():.1%} to ±{w.max():.1%}; SD of the log ratios {sd:.2%}, "
        f"bar for the median half-width ±{max(0.03, 2 * 1.96 * sd):.1%}"
    )
    return 0


def _history_lines(cache: str) -> int:
    """Lines in the cache folder's history files."""
    folder = os.path.join(cache, "history")
    if not os.path.isdir(folder):
        return 0
    total = 0
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            total += sum(1 for _ in f)
    return total


if __name__ == "__main__":
    raise SystemExit(main())
