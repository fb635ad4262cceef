import numpy as np
import pytest

from inferspeed import summarize
from inferspeed.stats.summary import min_samples_for_ci, outlier_mask, quantile_ci


def test_summary_matches_numpy_on_known_data() -> None:
    rng = np.random.default_rng(1)
    x = rng.lognormal(mean=9.0, sigma=0.4, size=10_001).astype(np.int64)
    s = summarize(x, timer_overhead_ns=21)
    xf = x.astype(np.float64)
    assert s.count == x.size
    assert s.min_ns == xf.min() and s.max_ns == xf.max()
    assert s.mean_ns == pytest.approx(xf.mean())
    assert s.std_ns == pytest.approx(xf.std(ddof=1))
    for key, q in [("median_ns", 50), ("p90_ns", 90), ("p95_ns", 95), ("p99_ns", 99), ("p999_ns", 99.9)]:
        assert getattr(s, key) == pytest.approx(np.percentile(xf, q)), key
    assert s.throughput_per_s == pytest.approx(1e9 / xf.mean())
    assert s.timer_overhead_ns == 21


def test_exact_values_on_small_sample() -> None:
    s = summarize(np.array([10, 20, 30, 40, 50]))
    assert (s.min_ns, s.median_ns, s.max_ns, s.mean_ns) == (10, 30, 50, 30)
    assert s.p90_ns == pytest.approx(46.0)  # linear interpolation between 40 and 50
    assert s.std_ns == pytest.approx(np.sqrt(250.0))
    assert s.throughput_per_s == pytest.approx(1e9 / 30)


def test_single_and_degenerate_samples() -> None:
    one = summarize(np.array([7]))
    assert one.std_ns == 0 and one.median_ns == one.p999_ns == 7
    zeros = summarize(np.zeros(4, np.int64))
    assert zeros.throughput_per_s is None
    with pytest.raises(ValueError):
        summarize(np.array([], np.int64))
    with pytest.raises(ValueError):
        summarize(np.ones((2, 2)))


@pytest.mark.parametrize(("q", "n"), [(0.5, 300), (0.5, 2000), (0.9, 1000), (0.99, 2000)])
def test_percentile_ci_coverage_by_simulation(q: float, n: int) -> None:
    """The 95% interval covers the true quantile in 93-97% of 2000 simulated samples."""
    from scipy import stats as sps

    rng = np.random.default_rng(12345)
    true = sps.lognorm.ppf(q, s=0.6, scale=50_000.0)
    draws = np.sort(rng.lognormal(np.log(50_000.0), 0.6, size=(2000, n)), axis=1)
    covered = 0
    for row in draws:
        lo, hi = quantile_ci(row, q)
        assert lo is not None and hi is not None
        covered += lo <= true <= hi
    assert 0.93 <= covered / 2000 <= 0.97


def test_ci_ranks_match_the_binomial() -> None:
    x = np.arange(1, 101, dtype=np.float64)  # x_(k) = k
    lo, hi = quantile_ci(x, 0.5)
    # Exact binomial ranks for n=100, q=0.5: P(40 <= B <= 60) >= 0.95.
    assert (lo, hi) == (40.0, 61.0)
    assert quantile_ci(x, 0.999)[1] is None  # 0.999**100 > 0.025: no upper bound


def test_too_few_samples_to_bound_a_percentile() -> None:
    assert min_samples_for_ci(0.999) == 3688  # 0.999**n <= 0.025
    s = summarize(np.arange(500) + 1000)
    assert s.ci95_p999_ns[1] is None and s.ci95_p999_ns[0] is not None
    assert "p99.9" in s.unbounded_percentiles() and "median" not in s.unbounded_percentiles()
    assert s.to_dict()["ci95_p999_ns"][1] is None
    big = summarize(np.arange(5000) + 1000)
    assert big.unbounded_percentiles() == []


def test_spread_and_outliers() -> None:
    x = np.array([100] * 50 + [101] * 50 + [102] * 50 + [1000, 5], dtype=np.int64)
    s = summarize(x)
    assert s.outliers_high == 1 and s.outliers_low == 1 and s.outliers_dropped == 0
    assert s.count == x.size and s.max_ns == 1000
    xf = x.astype(float)
    assert s.cv == pytest.approx(xf.std(ddof=1) / xf.mean())
    assert s.iqr_ns == pytest.approx(np.percentile(xf, 75) - np.percentile(xf, 25))
    assert s.mad_ns == pytest.approx(np.median(np.abs(xf - np.median(xf))))
    dropped = summarize(x, drop_outliers=True)
    assert dropped.outliers_dropped == 2 and dropped.count == 150 and dropped.max_ns == 102
    assert not outlier_mask(np.full(10, 7)).any()


def test_median_ci_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(2)
    small = summarize(rng.normal(1e5, 1e3, 100).astype(np.int64))
    large = summarize(rng.normal(1e5, 1e3, 10_000).astype(np.int64))
    w_small, w_large = small.median_ci_halfwidth(), large.median_ci_halfwidth()
    assert w_small is not None and w_large is not None and w_large < w_small / 5


def test_binomial_quantile_matches_scipy_stats() -> None:
    from scipy import stats as sps

    from inferspeed.stats.summary import _binom_ppf

    for n in (1, 7, 100, 3687, 3688, 100_000):
        for q in (0.5, 0.9, 0.99, 0.999):
            for p in (0.025, 0.975):
                assert _binom_ppf(p, n, q) == int(sps.binom.ppf(p, n, q)), (n, q, p)


def test_binomial_quantile_over_many_n_q_p() -> None:
    """The exact quantile (no scipy at run time) against scipy.stats.binom.ppf, n up to 10^7.
    Left out: exact ties P(B <= k) == p (q = p = 1/2 with n odd), which scipy's own rounding
    settles either way."""
    from scipy import stats as sps

    from inferspeed.stats.summary import _binom_ppf

    rng = np.random.default_rng(7)
    ns = {1, 2, 3, 10, 39, 40, 41, 99, 100, 101, 1000, 3688, 10**4, 10**5, 10**6, 10**7}
    ns |= {int(n) for n in rng.integers(1, 10**4, 40)} | {int(n) for n in rng.integers(10**4, 10**7, 12)}
    qs = (0.001, 0.005, 0.025, 0.1, 0.5, 0.9, 0.975, 0.995, 0.999)
    ps = (0.005, 0.025, 0.5, 0.975, 0.995)
    checked = 0
    for n in sorted(ns):
        for q in qs:
            for p in ps:
                if p == q == 0.5 and n % 2:
                    continue
                assert _binom_ppf(p, n, q) == int(sps.binom.ppf(p, n, q)), (n, q, p)
                checked += 1
    assert checked > 3000


def test_binomial_quantile_edges() -> None:
    from inferspeed.stats.summary import _binom_ppf

    assert _binom_ppf(0.0, 10, 0.5) == 0 and _binom_ppf(1.0, 10, 0.5) == 10
    assert _binom_ppf(0.5, 10, 0.0) == 0 and _binom_ppf(0.5, 10, 1.0) == 10
    assert _binom_ppf(0.975, 0, 0.5) == 0
    # At an exact tie the smallest k with P(B <= k) >= p, up to rounding: 3 or 4 for n = 7.
    assert _binom_ppf(0.5, 7, 0.5) in (3, 4)


def test_median_ci_widens_when_samples_are_correlated_in_time() -> None:
    """A machine switching between two speeds for long stretches: independent-sample intervals
    would claim a precision the run does not have; the batch medians widen the interval."""
    from inferspeed.stats.summary import median_ci

    rng = np.random.default_rng(3)
    parts = [rng.normal(160e3 if k % 2 else 205e3, 5e3, 1000) for k in range(15)]
    x = np.concatenate(parts).astype(np.int64)
    s = summarize(x)
    assert s.time_correlated and s.batch_dispersion is not None and s.batch_dispersion > 2
    lo, hi = s.ci95_median_ns
    assert lo is not None and hi is not None and hi - lo > 20e3
    assert median_ci(x) == s.ci95_median_ns
    # Independent samples are left alone: never flagged in 200 draws.
    flagged = sum(
        summarize(rng.lognormal(10, 0.4, 4000).astype(np.int64)).time_correlated for _ in range(200)
    )
    assert flagged == 0


def test_every_percentile_interval_holds_its_estimate() -> None:
    # With 2 samples the lower bound of the p99 is the larger sample, above the p99 that is
    # interpolated between them; with 2-25 samples the same for the p99.9.
    for n in (2, 3, 5, 10, 25, 40):
        x = np.arange(1, n + 1, dtype=np.float64) * 1000.0
        s = summarize(x.astype(np.int64))
        for key in ("median_ns", "p90_ns", "p95_ns", "p99_ns", "p999_ns"):
            lo, hi = s.ci(key)
            estimate = getattr(s, key)
            assert lo is None or lo <= estimate, (n, key)
            assert hi is None or hi >= estimate, (n, key)
