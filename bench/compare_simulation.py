"""Checks inferspeed.compare's statistics by simulation and prints the figures as markdown tables
(the tables in docs/compare.md come from it).

Separate runs (independent samples, two latency-like distributions, several sample sizes):

- same distribution on both sides: how often ``significant`` and a verdict other than "no
  significant difference" come out (false positives; 5% is the nominal rate of the test), and
  whether the p-values are uniform (scipy.stats.kstest against U(0, 1));
- a known shift (B = A + delta): how often the 95% intervals of the median ratio and of the
  Hodges-Lehmann shift hold the truth, and their mean width over the width the analytic
  standard error gives (2 * 1.96 * SE); the empirical SD of each point estimate over the
  replications, over the same SE, shows that the estimate itself is as good as theory says.

Interleaved runs (the paired path) on a machine whose speed alternates from round to round
(1.0, 1.25, 1.0, ... times, times a small random factor per round that both models share):
the paired comparison against the same pooled samples compared as separate runs, for no
difference (false positives, coverage) and for a small true difference (detection).

    python bench/compare_simulation.py      # about 35 minutes on 2 shared cores
    python bench/compare_simulation.py --sizes 300:200,3000:200 --paired-reps 100   # a quick look
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate
from scipy import stats as sps

from inferspeed import Result, summarize
from inferspeed.analysis.compare import Comparison, compare

Z95 = sps.norm.ppf(0.975)
MEDIAN_NS = 100_000.0


@dataclass(frozen=True)
class Shape:
    """A latency-like distribution (scipy frozen distribution), in nanoseconds."""

    name: str
    dist: sps.rv_continuous

    def draw(self, rng: np.random.Generator, n: int, delta: float = 0.0) -> np.ndarray:
        return np.round(self.dist.rvs(n, random_state=rng) + delta).astype(np.int64)

    def median(self) -> float:
        return float(self.dist.median())

    def median_se(self, n: int) -> float:
        """Asymptotic SE of the sample median: 1 / (2 f(median) sqrt(n))."""
        return 1.0 / (2.0 * float(self.dist.pdf(self.median())) * math.sqrt(n))

    def hl_se(self, n: int, m: int) -> float:
        """Asymptotic SE of the Hodges-Lehmann shift: sqrt((1/n + 1/m) / 12) / integral(f^2)."""
        lo, hi = self.dist.ppf([1e-12, 1.0 - 1e-12])
        square, _ = integrate.quad(lambda x: float(self.dist.pdf(x)) ** 2, lo, hi, limit=500)
        return math.sqrt((1.0 / n + 1.0 / m) / 12.0) / square


SHAPES = (
    Shape("lognormal(sigma 0.15)", sps.lognorm(0.15, scale=MEDIAN_NS)),
    # A floor plus a right-skewed tail: 70 us + Gamma(shape 2, scale 18 us).
    Shape("70 us + gamma(2, 18 us)", sps.gamma(2.0, loc=70_000.0, scale=18_000.0)),
)


def result(samples: np.ndarray) -> Result:
    x = np.asarray(samples, dtype=np.int64)
    return Result(x, summarize(x), {"name": "sim", "sha256": "sim"}, {}, {})


def covers(interval: tuple[float, float], truth: float) -> bool:
    return interval[0] <= truth <= interval[1]


def separate_runs(shape: Shape, n: int, reps: int, seed: int) -> dict[str, float]:
    """Null and known-shift figures for two independent runs of n samples each."""
    rng = np.random.default_rng([seed, n])
    delta = 0.02 * shape.median()
    truth = (shape.median() + delta) / shape.median()
    p99 = float(shape.dist.ppf(0.99))
    truth_p99 = (p99 + delta) / p99
    nulls: list[Comparison] = []
    shifted: list[Comparison] = []
    for k in range(reps):
        nulls.append(compare(result(shape.draw(rng, n)), result(shape.draw(rng, n)), seed=k))
        shifted.append(compare(result(shape.draw(rng, n)), result(shape.draw(rng, n, delta)), seed=k))
    se_log = math.hypot(shape.median_se(n) / shape.median(), shape.median_se(n) / (shape.median() + delta))
    ratio_width = truth * (math.exp(Z95 * se_log) - math.exp(-Z95 * se_log))
    hl_se = shape.hl_se(n, n)
    pvalues = [c.p_value for c in nulls]
    return {
        "significant": np.mean([c.significant for c in nulls]),
        "verdict": np.mean([c.verdict != "no significant difference" for c in nulls]),
        "ks_p": float(sps.kstest(pvalues, "uniform").pvalue),
        "ratio_cover": np.mean([covers(c.ratio_median_ci, truth) for c in shifted]),
        "ratio_width": np.mean([np.subtract(*c.ratio_median_ci[::-1]) for c in shifted]) / ratio_width,
        "ratio_sd": np.std([math.log(c.ratio_median) for c in shifted]) / se_log,
        "hl_cover": np.mean([covers(c.hl_shift_ci_ns, delta) for c in shifted]),
        "hl_width": np.mean([np.subtract(*c.hl_shift_ci_ns[::-1]) for c in shifted]) / (2 * Z95 * hl_se),
        "hl_sd": np.std([c.hl_shift_ns for c in shifted]) / hl_se,
        "p99_cover": np.mean([covers(c.ratio_p99_ci, truth_p99) for c in shifted]),
        "widened": np.mean([c.method != "independent" for c in nulls]),
    }


def interleaved(rounds: int, per_round: int, ratio: float, reps: int, seed: int) -> dict[str, float]:
    """Paired and unpaired figures for two models measured in ``rounds`` rounds, the machine
    alternating between two speeds 25% apart (times a shared random 2% per round)."""
    rng = np.random.default_rng(seed)
    paired: list[Comparison] = []
    unpaired: list[Comparison] = []
    for k in range(reps):
        speed = np.where(np.arange(rounds) % 2, 1.25, 1.0) * rng.lognormal(0.0, 0.02, rounds)
        a = [s * rng.lognormal(math.log(MEDIAN_NS), 0.1, per_round) for s in speed]
        b = [ratio * s * rng.lognormal(math.log(MEDIAN_NS), 0.1, per_round) for s in speed]
        ra, rb = [result(x) for x in a], [result(x) for x in b]
        pooled_a, pooled_b = result(np.concatenate(a)), result(np.concatenate(b))
        paired.append(compare(pooled_a, pooled_b, seed=k, rounds=(ra, rb)))
        unpaired.append(compare(pooled_a, pooled_b, seed=k))
    out: dict[str, float] = {}
    for name, cs in (("paired", paired), ("unpaired", unpaired)):
        out[f"{name}_significant"] = np.mean([c.significant for c in cs])
        out[f"{name}_cover"] = np.mean([covers(c.ratio_median_ci, ratio) for c in cs])
        out[f"{name}_width"] = np.mean([np.subtract(*c.ratio_median_ci[::-1]) for c in cs])
    return out


def timed(what: str, f: Callable[..., dict[str, float]], *args: float) -> dict[str, float]:
    """``f(*args)``, its time on standard error."""
    start = time.perf_counter()
    out = f(*args)
    print(f"  {what}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return out


def separate_tables(shapes: tuple[Shape, ...], sizes: list[tuple[int, int]], seed: int) -> list[str]:
    rows = []
    for i, shape in enumerate(shapes):
        for n, reps in sizes:
            rows.append(
                (shape, n, reps, timed(f"{shape.name} n={n}", separate_runs, shape, n, reps, 10 * seed + i))
            )
    out = [
        "Same distribution on both sides (false positives; nominal 5%):",
        "",
        '| distribution | n per run | reps | significant | verdict not "no difference" | KS p of the '
        "p-values | interval widened (not independent) |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, n, reps, r in rows:
        out.append(
            f"| {shape.name} | {n} | {reps} | {r['significant']:.1%} | {r['verdict']:.1%} "
            f"| {r['ks_p']:.2f} | {r['widened']:.1%} |"
        )
    out += [
        "",
        "B = A + 2% of the median: coverage of the 95% intervals (nominal 95%), mean width over",
        "2 x 1.96 x the analytic standard error, and the SD of the point estimate over that SE:",
        "",
        "| distribution | n per run | reps | ratio: coverage | ratio: width / 3.92 SE | ratio: SD / SE "
        "| shift: coverage | shift: width / 3.92 SE | shift: SD / SE | p99 ratio: coverage |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, n, reps, r in rows:
        out.append(
            f"| {shape.name} | {n} | {reps} | {r['ratio_cover']:.1%} | {r['ratio_width']:.2f} "
            f"| {r['ratio_sd']:.2f} | {r['hl_cover']:.1%} | {r['hl_width']:.2f} | {r['hl_sd']:.2f} "
            f"| {r['p99_cover']:.1%} |"
        )
    return out


def interleaved_table(reps: int, seed: int) -> list[str]:
    out = [
        "Interleaved, the machine alternating between two speeds 25% apart from round to round, 100",
        "samples per model per round (lognormal, sigma 0.1). Paired: `compare(..., rounds=...)`;",
        "unpaired: the same pooled samples compared as separate runs:",
        "",
        "| rounds | true ratio | reps | paired: significant | paired: coverage | paired: mean CI width "
        "| unpaired: significant | unpaired: coverage | unpaired: mean CI width |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rounds in (10, 30):
        for ratio in (1.0, 1.03):
            r = timed(f"interleaved {rounds} x {ratio}", interleaved, rounds, 100, ratio, reps, seed + rounds)
            out.append(
                f"| {rounds} | {ratio} | {reps} | {r['paired_significant']:.1%} | {r['paired_cover']:.1%} "
                f"| {r['paired_width']:.3f} | {r['unpaired_significant']:.1%} "
                f"| {r['unpaired_cover']:.1%} | {r['unpaired_width']:.3f} |"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="30:2000,300:2000,3000:2000,30000:500,200000:200",
        help="samples per run:replications, for separate runs (default %(default)s)",
    )
    parser.add_argument("--paired-reps", type=int, default=1000, help="replications per interleaved row")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = [(int(n), int(reps)) for n, reps in (item.split(":") for item in args.sizes.split(","))]
    given = sys.argv[1:] if argv is None else argv
    lines = [f"`python bench/compare_simulation.py{''.join(' ' + a for a in given)}`", ""]
    lines += separate_tables(SHAPES, sizes, args.seed)
    lines += ["", *interleaved_table(args.paired_reps, args.seed)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
