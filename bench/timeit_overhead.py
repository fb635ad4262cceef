"""inferspeed.timeit against the standard library's timeit on small Python callables.

For each callable, in rounds (order rotated each round): ``timeit.Timer(fn).repeat`` gives a
per-call mean over ``number`` calls (no per-call samples); ``inferspeed.timeit`` gives per-call
samples, with one pair of clock reads per call (batch 1) or per ``--batch`` calls. Prints
medians over rounds of each method's per-call time and the ratio to the standard library's.

    python bench/timeit_overhead.py            # about 20 s
    python bench/timeit_overhead.py --rounds 5 --time 0.1
"""

from __future__ import annotations

import argparse
import math
import timeit as std_timeit
from collections.abc import Callable
from typing import Any

import numpy as np

import inferspeed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--time", type=float, default=0.2, help="seconds per method per round")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    data = list(range(100))
    cases: dict[str, Callable[[], Any]] = {
        "empty lambda": lambda: None,
        "sum(range(100) list)": lambda: sum(data),
        "math.sqrt(2.0)": lambda: math.sqrt(2.0),
    }
    print(f"{args.rounds} rounds of {args.time}s per method; per-call ns, median over rounds")
    print(
        f"{'callable':<22} {'stdlib timeit':>14} {'inferspeed b=1':>15} "
        f"{'inferspeed b=' + str(args.batch):>18}"
    )
    for name, fn in cases.items():
        per: dict[str, list[float]] = {"std": [], "b1": [], "bk": []}
        for r in range(args.rounds):
            order = ["std", "b1", "bk"]
            order = order[r % 3 :] + order[: r % 3]
            for method in order:
                if method == "std":
                    timer = std_timeit.Timer(fn)
                    number, _ = timer.autorange()  # calls taking >= 0.2 s
                    reps = 3  # the best of 3, as python -m timeit reports the best of 5
                    per["std"].append(min(timer.repeat(repeat=reps, number=number)) / number * 1e9)
                else:
                    batch = 1 if method == "b1" else args.batch
                    res = inferspeed.timeit(fn, batch=batch, max_time=args.time, warmup_time=0.02)
                    per[method].append(res.stats.median_ns)
        m = {k: float(np.median(v)) for k, v in per.items()}
        print(
            f"{name:<22} {m['std']:>11.1f} ns {m['b1']:>12.1f} ns {m['bk']:>15.1f} ns"
            f"   (x{m['b1'] / m['std']:.2f}, x{m['bk'] / m['std']:.2f})"
        )


if __name__ == "__main__":
    main()
