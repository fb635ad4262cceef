"""Comparisons of latency results with statistics: is B faster or slower than A, by how much,
and is the difference more than noise?

For each candidate against the baseline:

- the ratio of medians with a 95% interval: log ratio +- 1.96 standard errors, each median's
  standard error the Maritz-Jarrett estimate (scipy.stats.mstats.mjci; from a seeded subsample
  of COMPARE_SUBSAMPLE samples, scaled by sqrt(subsample / n), for a longer run); and the ratio
  of p99s with a conservative interval from each run's distribution-free p99 interval (inf when
  a run is too short to bound its p99); when either run's samples are correlated in time
  (``stats.time_correlated``), the median ratio's interval is widened to a bootstrap over 20
  consecutive batches of each run;
- the Mann-Whitney U test (scipy.stats.mannwhitneyu, two-sided) on the samples;
- the Hodges-Lehmann shift (median of all pairwise differences B - A, found without forming
  them; up to COMPARE_SUBSAMPLE samples per side) with its interval from the Mann-Whitney
  distribution (normal approximation, ties corrected);
- for interleaved measurements, the median ratio is paired instead: the median over rounds of
  the ratio within each round, with its distribution-free interval, and the p-value is the
  sign test on those ratios (scipy.stats.binomtest), the test that interval inverts;
- for separate runs on a machine whose speed changes for seconds at a time, the interval is
  widened to at least ratio / (1 + v) .. ratio * (1 + v), where v is the larger of the two
  runs' own variation in time: the slowest over the fastest of STATE_BATCHES consecutive
  batch medians, minus 1, counted when it is more than twice what the same samples in random
  order give (``variation_in_time``). A run's level is a draw from the machine's states, so two
  runs cannot show a difference smaller than what one run saw the machine do
  (bench/run_to_run.py measures this);
- a verdict: "slower" / "faster" when the test is significant (p < alpha), the ratio's interval
  excludes 1 and the ratio differs from 1 by more than the noise threshold; otherwise
  "no significant difference".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import DEFAULT_THRESHOLD
from ..errors import InputError
from ..results.result import Result
from ..stats.summary import CI_BATCHES, MIN_BATCH

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_THRESHOLD",
    "Comparison",
    "check_comparable",
    "compare",
]

ALPHA = 0.05
#: Normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054
#: Resamples of the bootstrap over batch medians (samples correlated in time).
BOOTSTRAP = 1000
#: Fewest interleaved rounds for the paired ratio (its interval needs at least 6).
PAIRED_MIN_ROUNDS = 6
#: Most samples per side for the medians' standard errors and the pairwise differences; a
#: longer run uses a seeded random subsample of this size (see the module's docstring).
COMPARE_SUBSAMPLE = 50_000
#: Consecutive batches a run is cut into to see how the machine's speed varied during it.
STATE_BATCHES = 40
#: Percentiles of the batch medians whose ratio is a run's variation: the whole range.
STATE_PERCENTILES = (0.0, 100.0)


@dataclass(frozen=True)
class Comparison:
    """One candidate against the baseline (ratios are candidate / baseline)."""

    baseline: str
    candidate: str
    ratio_median: float
    ratio_median_ci: tuple[float, float]
    ratio_p99: float
    ratio_p99_ci: tuple[float, float]
    p_value: float
    hl_shift_ns: float
    hl_shift_ci_ns: tuple[float, float]
    threshold: float
    verdict: str
    #: How the median ratio's interval was found: "independent" (each median's Maritz-Jarrett
    #: standard error),
    #: "blocks" (widened by a bootstrap of consecutive batches), "machine-variation" (widened to
    #: the variation the runs saw in time, see the module's docstring) or "paired" (the ratio
    #: over interleaved rounds).
    method: str = "independent"
    #: Ratio of the medians of all samples (differs from ratio_median when paired).
    ratio_median_all: float | None = None
    #: The larger of the two runs' variation in time (method "machine-variation").
    machine_variation: float | None = None

    @property
    def significant(self) -> bool:
        lo, hi = self.ratio_median_ci
        return self.p_value < ALPHA and (lo > 1.0 or hi < 1.0)

    def slower_by_more_than(self, fraction: float) -> bool:
        """Significantly slower, with the median ratio above 1 + ``fraction``."""
        return self.significant and self.ratio_median > 1.0 + fraction

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["significant"] = self.significant
        return d


def _subsample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x if x.size <= COMPARE_SUBSAMPLE else rng.choice(x, COMPARE_SUBSAMPLE, replace=False)


def _median_se(x: np.ndarray, rng: np.random.Generator) -> float:
    """Standard error of the median of ``x``: Maritz-Jarrett (scipy.stats.mstats.mjci), from a
    subsample of COMPARE_SUBSAMPLE for a longer ``x``, scaled by sqrt(subsample / n) (the
    median's standard error goes as 1 / sqrt(n)). NaN for fewer than 3 samples."""
    from scipy.stats import mstats

    if x.size < 3:
        return math.nan
    sub = _subsample(x, rng)
    # Centred: mjci takes sqrt(E[X^2] - E[X]^2) under weights packed around the median, which
    # cancels catastrophically when the samples there are many equal whole nanoseconds (a 5 us
    # model: sqrt of a negative, NaN). The standard error does not depend on the centre.
    with np.errstate(invalid="ignore"):
        se = float(mstats.mjci(sub - np.median(sub), prob=[0.5])[0])
    return (se if math.isfinite(se) else 0.0) * math.sqrt(sub.size / x.size)


def _median_ratio_ci(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% interval of median(b) / median(a) for independent samples: exp(log ratio +- Z95 *
    se), se the delta-method standard error of the log ratio from each median's Maritz-Jarrett
    standard error. With fewer than 3 samples on a side, the ratio of the extremes."""
    ma, mb = float(np.median(a)), float(np.median(b))
    rel = math.hypot(_median_se(a, rng) / ma, _median_se(b, rng) / mb) if ma > 0 and mb > 0 else math.nan
    if not math.isfinite(rel):
        return (float(b.min() / a.max()), float(b.max() / a.min()) if a.min() > 0 else math.inf)
    return (mb / ma * math.exp(-Z95 * rel), mb / ma * math.exp(Z95 * rel))


def _paired_ratio(
    base_rounds: Sequence[Result], cand_rounds: Sequence[Result]
) -> tuple[float, tuple[float, float], float]:
    """Median of the per-round ratios of medians, with its distribution-free 95% interval, and
    the two-sided sign test of "as many rounds above 1 as below" (the test that the interval
    inverts: the interval excludes 1 exactly when p < 0.05; rounds with a ratio of 1 are left
    out of the test)."""
    from scipy import stats as sps

    from ..stats.summary import quantile_ci

    ratios = np.sort(
        [c.stats.median_ns / b.stats.median_ns for b, c in zip(base_rounds, cand_rounds, strict=True)]
    )
    lo, hi = quantile_ci(ratios, 0.5)
    above, below = int((ratios > 1.0).sum()), int((ratios < 1.0).sum())
    p_value = float(sps.binomtest(above, above + below, 0.5).pvalue) if above + below else 1.0
    return (
        float(np.median(ratios)),
        (
            float(lo) if lo is not None else float(ratios[0]),
            float(hi) if hi is not None else float(ratios[-1]),
        ),
        p_value,
    )


def _tail_ratio_ci(baseline: Result, candidate: Result, point: float) -> tuple[float, float]:
    """Interval of the p99 ratio from each run's distribution-free p99 interval (conservative:
    the ratio of the extremes). A subsample bootstrap is biased in the tail, so not that."""
    alo, ahi = baseline.stats.ci95_p99_ns
    blo, bhi = candidate.stats.ci95_p99_ns
    lo = blo / ahi if blo is not None and ahi else 0.0
    hi = bhi / alo if bhi is not None and alo else math.inf
    return (min(lo, point), max(hi, point))


def _block_ratio_ci(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float] | None:
    """Bootstrap interval of the median ratio from CI_BATCHES consecutive batches of each run
    (samples in the order measured): honest when samples are correlated in time, where the
    sample-by-sample bootstrap is far too narrow. None when a run is too short for batches."""
    medians = []
    for x in (a, b):
        size = x.size // CI_BATCHES
        if size < MIN_BATCH:
            return None
        medians.append(np.median(x[: size * CI_BATCHES].reshape(CI_BATCHES, size), axis=1))
    return _bootstrap_median_ratio(medians[0], medians[1], rng)


def _bootstrap_median_ratio(ma: np.ndarray, mb: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Bootstrap interval of median(mb) / median(ma), resampling each side's batch medians."""
    ia = rng.integers(0, ma.size, size=(BOOTSTRAP, ma.size))
    ib = rng.integers(0, mb.size, size=(BOOTSTRAP, mb.size))
    ratios = np.median(mb[ib], axis=1) / np.median(ma[ia], axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def variation_in_time(x: np.ndarray, rng: np.random.Generator) -> float | None:
    """How much a run's speed varied in time beyond chance: the slowest over the fastest of the
    medians of STATE_BATCHES consecutive batches of ``x`` (in the order measured), minus 1,
    when that is more than twice the same figure for the samples shuffled (no order in time);
    else None, as when the run is too short for batches of MIN_BATCH samples."""
    size = x.size // STATE_BATCHES
    if size < MIN_BATCH:
        return None

    def spread(y: np.ndarray) -> float:
        medians = np.median(y[: size * STATE_BATCHES].reshape(STATE_BATCHES, size), axis=1)
        lo, hi = np.percentile(medians, STATE_PERCENTILES)
        return float(hi / lo - 1.0) if lo > 0 else 0.0

    seen = spread(x)
    return seen if seen > 2.0 * spread(rng.permutation(x)) else None


def _pairwise_order_stats(a: np.ndarray, b: np.ndarray, ranks: Sequence[int]) -> np.ndarray:
    """The ``ranks``-th smallest (1-based) of the n*m differences b_j - a_i, without forming them:
    ``a`` and ``b`` sorted, integer-valued (nanoseconds), so each difference is an integer and a
    bisection over integers finds it exactly, counting the differences <= t with searchsorted
    (O(m log n) a step, about log2 of the range of the differences steps)."""
    r = np.asarray(ranks, dtype=np.int64)[:, None]
    lo = np.full(r.shape, b[0] - a[-1] - 1.0)  # fewer than r differences <= lo
    hi = np.full(r.shape, b[-1] - a[0])  # at least r differences <= hi
    total = a.size * b.size
    while np.any(hi - lo > 1.0):
        mid = np.floor((lo + hi) / 2.0)
        # For each b_j, the differences <= mid are those with a_i >= b_j - mid.
        below = np.searchsorted(a, (b[None, :] - mid).ravel(), side="left").reshape(r.shape[0], -1)
        enough = total - below.sum(axis=1, keepdims=True) >= r
        hi, lo = np.where(enough, mid, hi), np.where(enough, lo, mid)
    return hi.ravel()


def _hodges_lehmann(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Median of all differences b_j - a_i and its 95% interval: the differences of ranks C and
    n*m + 1 - C, C = n*m/2 - Z95 * sd(U) rounded (Mann-Whitney U, normal approximation, sd
    corrected for ties); ``a`` and ``b`` integer-valued."""
    a, b = np.sort(a), np.sort(b)
    n, m = a.size, b.size
    total = n * m
    _, ties = np.unique(np.concatenate([a, b]), return_counts=True)
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum()) / ((n + m) * (n + m - 1))
    sd_u = math.sqrt(n * m / 12.0 * ((n + m + 1) - tie_term))
    c = min(max(round(total / 2.0 - Z95 * sd_u), 1), (total + 1) // 2)
    mid = [(total + 1) // 2, total // 2 + 1]
    lo, hi, m1, m2 = _pairwise_order_stats(a, b, [c, total + 1 - c, *mid])
    return float((m1 + m2) / 2.0), (float(lo), float(hi))


def compare(
    baseline: Result,
    candidate: Result,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_label: str = "A",
    candidate_label: str = "B",
    seed: int = 0,
    rounds: tuple[Sequence[Result], Sequence[Result]] | None = None,
) -> Comparison:
    """Compare ``candidate`` with ``baseline`` (see the module's docstring). With ``rounds``
    (the per-round results of an interleaved measurement, in pairs), the median ratio and its
    interval are paired: the median over rounds of median(candidate) / median(baseline) in the
    same round, which a machine that changes speed between rounds cannot bias."""
    from scipy import stats as sps  # slow to import: only here

    rng = np.random.default_rng(seed)
    a_all = baseline.samples_ns.astype(np.float64)
    b_all = candidate.samples_ns.astype(np.float64)
    if a_all.size < 2 or b_all.size < 2:
        raise InputError("each result needs at least 2 samples to compare")
    ratio_all = float(np.median(b_all) / np.median(a_all))
    p_value = float(sps.mannwhitneyu(a_all, b_all, alternative="two-sided").pvalue)
    ratio, ratio_ci = ratio_all, _median_ratio_ci(a_all, b_all, rng)
    method, variation = "independent", None
    if rounds is not None and len(rounds[0]) >= PAIRED_MIN_ROUNDS:
        method = "paired"
        ratio, ratio_ci, p_value = _paired_ratio(*rounds)
    else:
        if baseline.stats.time_correlated or candidate.stats.time_correlated:
            # Samples correlated in time: only whole stretches of the run are independent.
            blocks = _block_ratio_ci(a_all, b_all, rng)
            if blocks is not None:
                method = "blocks"
                ratio_ci = (min(ratio_ci[0], blocks[0]), max(ratio_ci[1], blocks[1]))
        found = [v for v in (variation_in_time(a_all, rng), variation_in_time(b_all, rng)) if v is not None]
        if found:
            method, variation = "machine-variation", max(found)
            ratio_ci = (
                min(ratio_ci[0], ratio / (1.0 + variation)),
                max(ratio_ci[1], ratio * (1.0 + variation)),
            )
    p99 = float(np.percentile(b_all, 99) / np.percentile(a_all, 99))
    p99_ci = _tail_ratio_ci(baseline, candidate, p99)
    shift, shift_ci = _hodges_lehmann(_subsample(a_all, rng), _subsample(b_all, rng))
    significant = p_value < ALPHA and (ratio_ci[0] > 1.0 or ratio_ci[1] < 1.0)
    if significant and ratio > 1.0 + threshold:
        verdict = "slower"
    elif significant and ratio < 1.0 - threshold:
        verdict = "faster"
    else:
        verdict = "no significant difference"
    return Comparison(
        baseline=baseline_label,
        candidate=candidate_label,
        ratio_median=ratio,
        ratio_median_ci=ratio_ci,
        ratio_p99=p99,
        ratio_p99_ci=p99_ci,
        p_value=p_value,
        hl_shift_ns=shift,
        hl_shift_ci_ns=shift_ci,
        threshold=threshold,
        verdict=verdict,
        method=method,
        ratio_median_all=ratio_all,
        machine_variation=variation,
    )


def check_comparable(baseline: Result, candidate: Result) -> str | None:
    """Why two results should not be compared (different model or machine), or None."""
    sha_a, sha_b = baseline.model.get("sha256"), candidate.model.get("sha256")
    if sha_a and sha_b and sha_a != sha_b:
        return (
            f"they measure different models ({baseline.model.get('name')} vs {candidate.model.get('name')})"
        )
    cpu_a = baseline.environment.get("cpu", {})
    cpu_b = candidate.environment.get("cpu", {})
    for key in ("model", "logical_cores"):
        if cpu_a.get(key) != cpu_b.get(key):
            return f"they come from different machines (CPU {key}: {cpu_a.get(key)} vs {cpu_b.get(key)})"
    return None
