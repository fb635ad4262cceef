import numpy as np
import pytest

from inferspeed import summarize


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
