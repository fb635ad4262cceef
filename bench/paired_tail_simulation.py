"""The p99 of an interleaved A/A comparison, paired against unpaired, on constructed runs.

Two sides of one distribution, measured in interleaved rounds on a machine with bursts: in 15%
of a side's rounds a tenth of its calls run 1.5 times slower. A side's pooled p99 depends on
how many bursts fell in its rounds, which each run's own (per-sample) p99 interval does not
see. Counts how often each interval excludes 1 (an A/A: it should in 5% at most):

    python bench/paired_tail_simulation.py [PAIRS] [ROUNDS] [CALLS]

docs/compare.md quotes its output for the defaults (200 pairs, 60 rounds of 250 calls).
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from inferspeed import Result, summarize
from inferspeed.analysis.compare import _tail_ratio_ci, compare
from inferspeed.results.pool import pool_results, round_record


def _side(rng: np.random.Generator, rounds: int, calls: int, run: str, session: int) -> Result:
    parts = []
    for _ in range(rounds):
        x = rng.lognormal(np.log(1e5), 0.05, calls)
        if rng.random() < 0.15:
            start = int(rng.integers(0, calls - calls // 10))
            x[start : start + calls // 10] *= 1.5
        x = np.round(x).astype(np.int64)
        parts.append(Result(x, summarize(x), {"name": "m"}, {}, {}, warmup={"iterations": 1, "time_ns": 1}))
    records = [round_record(p) for p in parts]
    interleave = {"id": run, "session": session, "rounds": records}
    return dataclasses.replace(pool_results(parts), loop={"interleave": interleave})


def main() -> None:
    pairs, rounds, calls = (int(a) for a in (sys.argv[1:] + ["200", "60", "250"][len(sys.argv) - 1 :]))
    unpaired = paired = 0
    for seed in range(pairs):
        rng = np.random.default_rng(seed)
        a, b = _side(rng, rounds, calls, str(seed), 0), _side(rng, rounds, calls, str(seed), 1)
        c = compare(a, b)
        ratio = float(b.stats.p99_ns / a.stats.p99_ns)
        lo, hi = _tail_ratio_ci(a, b, ratio)
        unpaired += lo > 1.0 or hi < 1.0
        paired += c.ratio_p99_ci[0] > 1.0 or c.ratio_p99_ci[1] < 1.0
    print(f"{pairs} A/A pairs, {rounds} rounds of {calls} calls a side:")
    print(f"  unpaired p99 interval excludes 1: {unpaired} of {pairs}")
    print(f"  paired p99 interval (blocks of rounds) excludes 1: {paired} of {pairs}")


if __name__ == "__main__":
    main()
