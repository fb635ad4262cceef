"""Statistics of latency samples: small pure functions over int64 nanosecond arrays.

Confidence intervals of percentiles are distribution-free: the interval between two order
statistics whose ranks come from the binomial distribution, so they hold whatever the shape of
the latency distribution, provided the samples are independent draws. When there are too few
samples for a bound to exist (p99.9 from 500 samples has no upper bound), that bound is None.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "OUTLIER_Z",
    "PERCENTILES",
    "Stats",
    "batch_median_ci",
    "ci_ranks",
    "median_ci",
    "min_samples_for_ci",
    "outlier_mask",
    "quantile_ci",
    "summarize",
]

#: Percentiles every result reports: (stats key, percentile, label).
PERCENTILES: tuple[tuple[str, float, str], ...] = (
    ("median_ns", 50.0, "median"),
    ("p90_ns", 90.0, "p90"),
    ("p95_ns", 95.0, "p95"),
    ("p99_ns", 99.0, "p99"),
    ("p999_ns", 99.9, "p99.9"),
)

#: A sample is an outlier when its modified z-score, |x - median| / (1.4826 MAD), exceeds this
#: (Iglewicz and Hoaglin's rule).
OUTLIER_Z = 3.5

CONFIDENCE = 0.95

#: The median's interval also comes from this many consecutive batches of the run...
CI_BATCHES = 20
#: ...when their medians spread more than this many times what independent samples predict:
#: the samples are then correlated in time (a machine changing speed for seconds at a time)
#: and an interval that assumes independent draws is too narrow.
CORRELATION_FACTOR = 2.0
#: Fewest samples per batch for a batch median to mean anything.
MIN_BATCH = 25

Interval = tuple[float | None, float | None]


def ci_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) of the order statistics that bound the ``q`` quantile of ``n``
    samples with coverage >= ``confidence``; None where no rank in 1..n will do."""
    alpha = (1.0 - confidence) / 2.0
    # B = number of samples below the true quantile ~ Binomial(n, q).
    # x_(l) <= quantile iff B >= l; x_(u) >= quantile iff B <= u - 1.
    lo_rank = _binom_ppf(alpha, n, q)  # P(B <= lo_rank - 1) < alpha
    hi_rank = _binom_ppf(1.0 - alpha, n, q) + 1  # P(B >= hi_rank) <= alpha
    return (lo_rank if lo_rank >= 1 else None, hi_rank if hi_rank <= n else None)


def quantile_ci(
    x: np.ndarray, q: float, confidence: float = CONFIDENCE, *, presorted: bool = True
) -> Interval:
    """Distribution-free confidence interval of the ``q`` quantile (0 < q < 1): [x_(l), x_(u)]
    with l, u the binomial ranks that give coverage >= ``confidence`` (:func:`ci_ranks`).
    A bound that would need a rank outside 1..n is None (too few samples to bound it).
    ``x`` must be sorted unless ``presorted`` is False (then two partial sorts find the ranks)."""
    n = x.size
    if n == 0:
        return (None, None)
    lo_rank, hi_rank = ci_ranks(n, q, confidence)
    if not presorted:
        wanted = [r - 1 for r in (lo_rank, hi_rank) if r is not None]
        x = np.partition(x, wanted) if wanted else x
    lo = float(x[lo_rank - 1]) if lo_rank is not None else None
    hi = float(x[hi_rank - 1]) if hi_rank is not None else None
    return (lo, hi)


def _holding(interval: Interval, estimate: float) -> Interval:
    """An order-statistic interval widened to hold the interpolated estimate: with very few
    samples the one bound that exists can lie past it (the largest of 2 samples is the lower
    bound of their p99, above the p99 interpolated between them)."""
    lo, hi = interval
    return (None if lo is None else min(lo, estimate), None if hi is None else max(hi, estimate))


def _binom_ppf(p: float, n: int, q: float) -> int:
    """Smallest k with P(Binomial(n, q) <= k) >= ``p``: scipy.stats.binom.ppf, computed here
    because scipy.special alone takes 0.3-0.5 s to import.

    The probabilities are exact up to rounding: the log-pmf relative to the mode is a
    cumulative sum of log pmf(k+1)/pmf(k) = log((n-k)/(k+1) * q/(1-q)) over a window of
    12 standard deviations plus 100 around the mode (Bernstein's inequality leaves less than
    1e-30 of the mass outside it), normalised by the window's sum, so no log-gamma of a large
    n loses digits. For p above 1/2 the upper tail is summed (its small terms keep their
    digits). It matches scipy for every (n, q, p) tested (tests/test_stats.py) except exact
    ties, P(B <= k) == p, which scipy's rounding settles either way (q = p = 1/2, odd n)."""
    if n <= 0 or p <= 0.0 or q <= 0.0:
        return 0
    if p >= 1.0 or q >= 1.0:
        return n
    half = int(12.0 * math.sqrt(n * q * (1.0 - q))) + 100
    mode = min(int((n + 1) * q), n)
    lo, hi = max(0, mode - half), min(n, mode + half)
    k = np.arange(lo, hi, dtype=np.float64)
    step = np.log((n - k) / (k + 1.0)) + (math.log(q) - math.log1p(-q))
    m = mode - lo
    log_pmf = np.empty(hi - lo + 1)
    log_pmf[m] = 0.0
    np.cumsum(step[m:], out=log_pmf[m + 1 :])
    log_pmf[:m] = -np.cumsum(step[:m][::-1])[::-1]
    pmf = np.exp(log_pmf)
    total = float(pmf.sum())
    if p <= 0.5:
        cdf = np.cumsum(pmf) / total
        return lo + int(np.argmax(cdf >= p))
    at_least = np.cumsum(pmf[::-1])[::-1] / total  # P(B >= lo + i)
    above = np.append(at_least[1:], 0.0)  # P(B > lo + i)
    return lo + int(np.argmax(above <= 1.0 - p))


def batch_median_ci(x: np.ndarray, confidence: float = CONFIDENCE) -> tuple[Interval, float] | None:
    """Interval of the median from CI_BATCHES consecutive batches of ``x`` (in the order measured),
    and how much more the batch medians spread than independent samples would make them
    (1 for independent samples). None when there are too few samples for batches."""
    xf = np.asarray(x, dtype=np.float64)
    size = xf.size // CI_BATCHES
    if size < MIN_BATCH:
        return None
    medians = np.median(xf[: size * CI_BATCHES].reshape(CI_BATCHES, size), axis=1)
    center = float(np.median(xf))
    spread = 1.4826 * float(np.median(np.abs(xf - center)))
    if spread == 0.0:
        spread = 1.2533 * float(np.abs(xf - center).mean())
    predicted = 1.2533 * spread / math.sqrt(size)  # standard error of one batch's median
    observed = 1.4826 * float(np.median(np.abs(medians - np.median(medians))))
    ratio = observed / predicted if predicted > 0 else 1.0
    return quantile_ci(np.sort(medians), 0.5, confidence), ratio


def _widen_for_correlation(x: np.ndarray, iid: Interval) -> tuple[Interval, float | None]:
    """The median's interval ``iid``, widened to the batch-median interval when the samples
    (``x`` in the order measured) are correlated in time; and the batch dispersion ratio."""
    batches = batch_median_ci(x)
    if batches is None:
        return iid, None
    (blo, bhi), ratio = batches
    if ratio <= CORRELATION_FACTOR:
        return iid, ratio
    lo, hi = iid
    widened = (
        None if lo is None or blo is None else min(lo, blo),
        None if hi is None or bhi is None else max(hi, bhi),
    )
    return widened, ratio


def median_ci(x: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """The median's 95% interval as :func:`summarize` reports it, from samples in the order
    they were measured (unsorted): order statistics, widened when samples are correlated in time."""
    interval, _ = _widen_for_correlation(x, quantile_ci(x, 0.5, confidence, presorted=False))
    return interval


def min_samples_for_ci(q: float, confidence: float = CONFIDENCE) -> int:
    """Fewest samples for which the ``q`` quantile's interval has both bounds."""
    alpha = (1.0 - confidence) / 2.0
    # The upper bound exists once P(all n samples below the quantile) = q**n <= alpha,
    # the lower once (1 - q)**n <= alpha.
    return max(math.ceil(math.log(alpha) / math.log(q)), math.ceil(math.log(alpha) / math.log(1 - q)))


def outlier_mask(x: np.ndarray, median: float | None = None) -> np.ndarray:
    """True where a sample is an outlier by the MAD rule (modified z-score > OUTLIER_Z).
    When more than half the samples are equal (MAD = 0) the mean absolute deviation stands in."""
    xf = np.asarray(x, dtype=np.float64)
    med = float(np.median(xf)) if median is None else median
    dev = np.abs(xf - med)
    scale = 1.4826 * float(np.median(dev))
    if scale == 0.0:
        scale = 1.2533 * float(dev.mean())
    if scale == 0.0:
        return np.zeros(xf.shape, dtype=bool)
    return dev / scale > OUTLIER_Z


@dataclass(frozen=True)
class Stats:
    """Summary of one set of latency samples, all times in nanoseconds.

    Percentiles use numpy's default (linear interpolation between order statistics).
    ``ci95_*`` are distribution-free 95% confidence intervals (see :func:`quantile_ci`);
    a None bound means too few samples to bound it. ``std_ns`` is the sample standard
    deviation (ddof=1; 0 for one sample); ``cv`` = std / mean; ``iqr_ns`` = p75 - p25;
    ``mad_ns`` the median absolute deviation (unscaled). ``outliers_low/high`` count samples
    with a modified z-score above OUTLIER_Z; they are kept in every figure unless
    ``outliers_dropped`` > 0. ``time_correlated``: the medians of consecutive batches of the run
    spread more than CORRELATION_FACTOR times what independent samples predict
    (``batch_dispersion`` is that ratio); the median's interval is then widened to cover the
    interval from the batch medians too. ``ci95_median_within_ns``: set when a closed loop's
    ``ci95_median_ns`` was made the interval for another run on this machine
    (:mod:`inferspeed.stats.timeseries`): the within-run interval it replaced, of the median of
    these samples' own distribution. ``throughput_per_s`` is inferences per second of one stream:
    count / sum of latencies (None when every sample is 0). ``timer_overhead_ns`` is what one
    empty timed region costs on this machine; it is included in every sample, not subtracted.
    """

    count: int
    min_ns: float
    max_ns: float
    mean_ns: float
    std_ns: float
    median_ns: float
    p90_ns: float
    p95_ns: float
    p99_ns: float
    p999_ns: float
    throughput_per_s: float | None
    timer_overhead_ns: float
    ci95_median_ns: Interval = (None, None)
    ci95_p90_ns: Interval = (None, None)
    ci95_p95_ns: Interval = (None, None)
    ci95_p99_ns: Interval = (None, None)
    ci95_p999_ns: Interval = (None, None)
    p25_ns: float = 0.0
    p75_ns: float = 0.0
    iqr_ns: float = 0.0
    mad_ns: float = 0.0
    cv: float = 0.0
    outliers_low: int = 0
    outliers_high: int = 0
    outliers_dropped: int = 0
    time_correlated: bool = False
    batch_dispersion: float | None = None
    ci95_median_within_ns: Interval | None = None

    def ci(self, key: str) -> Interval:
        """The interval of a percentile key ("median_ns", "p99_ns", ...)."""
        value: Interval = getattr(self, f"ci95_{key}")
        return value

    def median_ci_halfwidth(self) -> float | None:
        """max(median - lo, hi - median) / median: the median's relative uncertainty."""
        return relative_halfwidth(self.median_ns, self.ci95_median_ns)

    def unbounded_percentiles(self) -> list[str]:
        """Labels of the reported percentiles whose interval lacks a bound."""
        return [label for key, _, label in PERCENTILES if None in self.ci(key)]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key, _, _ in PERCENTILES:
            d[f"ci95_{key}"] = list(d[f"ci95_{key}"])
        if d["ci95_median_within_ns"] is not None:
            d["ci95_median_within_ns"] = list(d["ci95_median_within_ns"])
        d["ci95_median_for"] = self.ci95_median_for
        return d

    @property
    def ci95_median_for(self) -> str:
        """What ``ci95_median_ns`` is for: "another run" (a closed loop's, with its within-run
        interval kept apart) or "these samples" (their own order statistics: pooled rounds,
        scenarios, callables without a monitor)."""
        return "another run" if self.ci95_median_within_ns is not None else "these samples"


def relative_halfwidth(center: float, interval: Interval) -> float | None:
    lo, hi = interval
    if lo is None or hi is None or center <= 0:
        return None
    return max(center - lo, hi - center) / center


def summarize(samples_ns: np.ndarray, timer_overhead_ns: float = 0.0, drop_outliers: bool = False) -> Stats:
    """Stats of ``samples_ns`` (a non-empty 1-D array of latencies in nanoseconds).
    With ``drop_outliers``, MAD outliers are removed before every figure is computed."""
    x = np.asarray(samples_ns)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("samples must be a non-empty 1-D array")
    xf = x.astype(np.float64)
    median = float(np.median(xf))
    mask = outlier_mask(xf, median)
    low = int((mask & (xf < median)).sum())
    high = int((mask & (xf > median)).sum())
    dropped = 0
    if drop_outliers and mask.any() and not mask.all():
        dropped = int(mask.sum())
        xf = xf[~mask]  # keeps the order of measurement
    xs = np.sort(xf)
    qs = np.percentile(xs, [25.0, 75.0] + [q for _, q, _ in PERCENTILES])
    total = float(xs.sum())
    mean = float(xs.mean())
    std = float(xs.std(ddof=1)) if xs.size > 1 else 0.0
    cis = {
        f"ci95_{key}": _holding(quantile_ci(xs, q / 100.0), float(estimate))
        for (key, q, _), estimate in zip(PERCENTILES, qs[2:], strict=True)
    }
    cis["ci95_median_ns"], dispersion = _widen_for_correlation(xf, cis["ci95_median_ns"])
    correlated = dispersion is not None and dispersion > CORRELATION_FACTOR
    return Stats(
        count=int(xs.size),
        min_ns=float(xs[0]),
        max_ns=float(xs[-1]),
        mean_ns=mean,
        std_ns=std,
        median_ns=float(qs[2]),
        p90_ns=float(qs[3]),
        p95_ns=float(qs[4]),
        p99_ns=float(qs[5]),
        p999_ns=float(qs[6]),
        throughput_per_s=xs.size / total * 1e9 if total > 0 else None,
        timer_overhead_ns=float(timer_overhead_ns),
        p25_ns=float(qs[0]),
        p75_ns=float(qs[1]),
        iqr_ns=float(qs[1] - qs[0]),
        mad_ns=float(np.median(np.abs(xs - float(qs[2])))),
        cv=std / mean if mean > 0 else 0.0,
        outliers_low=low,
        outliers_high=high,
        outliers_dropped=dropped,
        time_correlated=correlated,
        batch_dispersion=None if dispersion is None else round(dispersion, 3),
        **cis,
    )
