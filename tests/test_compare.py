"""Comparisons with significance, the JSON loader, and several models measured interleaved."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferspeed import InputError, Result, summarize
from inferspeed.analysis import compare as compare_module
from inferspeed.analysis.compare import Comparison, check_comparable, compare
from inferspeed.results.result import load_json

from .conftest import until
from .test_cli import cli

ENV = {"cpu": {"model": "test cpu", "logical_cores": 2}}


def result(samples: np.ndarray, sha: str = "same", env: dict[str, object] | None = None) -> Result:
    x = np.asarray(samples).astype(np.int64)
    return Result(x, summarize(x), {"name": sha, "sha256": sha}, {}, env or ENV)


# ------------------------------------------------------------------ the statistics, by simulation
#
# Latency-like samples with known truth: lognormal with median MEDIAN_NS and log-SD SIGMA, for
# which the analytic standard errors are closed forms (docs/compare.md, "How the statistics were
# checked"; bench/compare_simulation.py runs the same checks with more replications).

MEDIAN_NS, SIGMA = 100_000.0, 0.15
#: Replications of each kind (same distribution, known shift): 500 pairs for the false-positive
#: rate and the p-values, 1000 intervals (both kinds) for the coverage.
REPS, N = 500, 100
SHIFT_NS = 0.02 * MEDIAN_NS
Z95 = 1.959963984540054


def lognormal_run(rng: np.random.Generator, n: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return np.round(scale * rng.lognormal(np.log(MEDIAN_NS), SIGMA, n) + shift)


def median_ratio_se(n: int, shift: float = 0.0) -> float:
    """Analytic SE of log(median(B) / median(A)), B = A + shift, n samples each: the median's SE
    is 1 / (2 f(median) sqrt(n)), f(median) = 1 / (median * SIGMA * sqrt(2 pi)) for A (and the
    same density at B's median)."""
    se_median = MEDIAN_NS * SIGMA * np.sqrt(np.pi / 2.0) / np.sqrt(n)
    return float(np.hypot(se_median / MEDIAN_NS, se_median / (MEDIAN_NS + shift)))


def hodges_lehmann_se(n: int, m: int) -> float:
    """Analytic SE of the Hodges-Lehmann shift: sqrt((1/n + 1/m) / 12) / integral(f^2), the
    integral exp(-mu + sigma^2 / 4) / (2 sigma sqrt(pi)) for a lognormal(mu, sigma)."""
    square = np.exp(-np.log(MEDIAN_NS) + SIGMA**2 / 4.0) / (2.0 * SIGMA * np.sqrt(np.pi))
    return float(np.sqrt((1.0 / n + 1.0 / m) / 12.0) / square)


def width(interval: tuple[float, float]) -> float:
    return interval[1] - interval[0]


@pytest.fixture(scope="module")
def simulated() -> dict[str, list[Comparison]]:
    """REPS comparisons of two runs of one distribution and REPS of B = A + SHIFT_NS (seeded)."""
    rng = np.random.default_rng(2024)
    same = [
        compare(result(lognormal_run(rng, N)), result(lognormal_run(rng, N)), seed=k) for k in range(REPS)
    ]
    shifted = [
        compare(result(lognormal_run(rng, N)), result(lognormal_run(rng, N, SHIFT_NS)), seed=k)
        for k in range(REPS)
    ]
    return {"same": same, "shifted": shifted}


def test_same_distribution_false_positives_at_most_7_percent(simulated: dict[str, list[Comparison]]) -> None:
    same = simulated["same"]
    assert len(same) >= 500
    significant = np.mean([c.significant for c in same])
    called = np.mean([c.verdict != "no significant difference" for c in same])
    assert significant <= 0.07 and called <= significant, (significant, called)


def test_same_distribution_p_values_are_uniform(simulated: dict[str, list[Comparison]]) -> None:
    from scipy import stats as sps

    p_values = [c.p_value for c in simulated["same"]]
    ks = sps.kstest(p_values, "uniform")
    assert ks.pvalue > 0.01, ks
    # ...and its power against the known shift is the analytic one: Phi(z - 1.96) + Phi(-z - 1.96),
    # z = shift / (the Hodges-Lehmann SE), Mann-Whitney's asymptotic power (0.15 here).
    z = SHIFT_NS / hodges_lehmann_se(N, N)
    power = sps.norm.cdf(z - Z95) + sps.norm.cdf(-z - Z95)
    assert abs(np.mean([c.p_value < 0.05 for c in simulated["shifted"]]) - power) < 0.05


def test_median_ratio_interval_covers_and_has_the_analytic_width(
    simulated: dict[str, list[Comparison]],
) -> None:
    cases = [(c, 1.0, 0.0) for c in simulated["same"]]
    cases += [(c, (MEDIAN_NS + SHIFT_NS) / MEDIAN_NS, SHIFT_NS) for c in simulated["shifted"]]
    coverage = np.mean([c.ratio_median_ci[0] <= truth <= c.ratio_median_ci[1] for c, truth, _ in cases])
    assert 0.93 <= coverage <= 0.97, coverage
    for kind, shift in (("same", 0.0), ("shifted", SHIFT_NS)):
        truth = (MEDIAN_NS + shift) / MEDIAN_NS
        se = median_ratio_se(N, shift)
        analytic = truth * (np.exp(Z95 * se) - np.exp(-Z95 * se))
        mean_width = np.mean([width(c.ratio_median_ci) for c in simulated[kind]])
        assert 0.7 < mean_width / analytic < 1.3, (kind, mean_width, analytic)
        # The point estimate itself varies as the analytic SE says.
        sd = np.std([np.log(c.ratio_median) for c in simulated[kind]])
        assert 0.7 < sd / se < 1.3, (kind, sd, se)


def test_hodges_lehmann_interval_covers_and_has_the_analytic_width(
    simulated: dict[str, list[Comparison]],
) -> None:
    cases = [(c, 0.0) for c in simulated["same"]] + [(c, SHIFT_NS) for c in simulated["shifted"]]
    coverage = np.mean([c.hl_shift_ci_ns[0] <= truth <= c.hl_shift_ci_ns[1] for c, truth in cases])
    assert 0.93 <= coverage <= 0.97, coverage
    se = hodges_lehmann_se(N, N)
    for kind in ("same", "shifted"):
        mean_width = np.mean([width(c.hl_shift_ci_ns) for c in simulated[kind]])
        assert 0.7 < mean_width / (2 * Z95 * se) < 1.3, (kind, mean_width, 2 * Z95 * se)
        sd = np.std([c.hl_shift_ns for c in simulated[kind]])
        assert 0.7 < sd / se < 1.3, (kind, sd, se)


def test_long_runs_use_all_their_samples_for_the_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond COMPARE_SUBSAMPLE samples the median's standard error comes from a subsample,
    scaled to the whole run: the ratio's interval is as narrow as all samples make it. The
    shift's interval is that of the subsample (wider, still honest)."""
    monkeypatch.setattr(compare_module, "COMPARE_SUBSAMPLE", 400)
    rng = np.random.default_rng(31)
    n = 1600
    runs = [compare(result(lognormal_run(rng, n)), result(lognormal_run(rng, n)), seed=k) for k in range(40)]
    se = median_ratio_se(n)
    mean_width = np.mean([width(c.ratio_median_ci) for c in runs])
    assert 0.7 < mean_width / (2 * np.sinh(Z95 * se)) < 1.3
    hl_width = np.mean([width(c.hl_shift_ci_ns) for c in runs])
    assert 0.7 < hl_width / (2 * Z95 * hodges_lehmann_se(400, 400)) < 1.3


def test_hodges_lehmann_is_the_median_of_all_pairwise_differences() -> None:
    rng = np.random.default_rng(16)
    a = rng.choice(1_000_000, 137, replace=False) + 50_000
    b = rng.choice(1_000_000, 91, replace=False) + 80_000
    c = compare(result(a), result(b))
    diffs = np.sort((b[None, :] - a[:, None]).ravel())  # brute force: all 12467 differences
    assert c.hl_shift_ns == np.median(diffs)
    # The interval: the differences of ranks k and N + 1 - k, k = N/2 - 1.96 sd(U) rounded.
    k = round(diffs.size / 2 - Z95 * np.sqrt(137 * 91 * (137 + 91 + 1) / 12))
    assert c.hl_shift_ci_ns == (diffs[k - 1], diffs[diffs.size - k])
    # Small even-sized case by hand: differences of [0, 10] and [1, 2, 30] are -9 -8 1 2 20 30.
    tiny = compare(result(np.array([0, 10])), result(np.array([1, 2, 30])))
    assert tiny.hl_shift_ns == 1.5


def test_p_value_of_separated_samples_is_the_exact_mann_whitney_tail() -> None:
    # Every B above every A: U = 0, of C(8, 4) = 70 equally likely orderings; two-sided 2/70.
    c = compare(result(np.array([10, 11, 12, 13])), result(np.array([20, 21, 22, 23])))
    assert c.p_value == pytest.approx(2 / 70)


def alternating_rounds(
    rng: np.random.Generator, ratio: float, rounds: int = 10, per_round: int = 100
) -> tuple[list[Result], list[Result]]:
    """Per-round results of two models measured in each round on a machine whose speed
    alternates between two levels 25% apart (times 2% at random, the same for both models)."""
    speed = np.where(np.arange(rounds) % 2, 1.25, 1.0) * rng.lognormal(0.0, 0.02, rounds)
    a = [result(lognormal_run(rng, per_round, scale=s)) for s in speed]
    b = [result(lognormal_run(rng, per_round, scale=ratio * s)) for s in speed]
    return a, b


def pooled(rounds: list[Result]) -> Result:
    return result(np.concatenate([r.samples_ns for r in rounds]))


def test_paired_comparison_beats_unpaired_on_a_machine_that_alternates_speed() -> None:
    rng = np.random.default_rng(17)
    paired, unpaired = [], []
    for k in range(60):
        a, b = alternating_rounds(rng, 1.05)
        paired.append(compare(pooled(a), pooled(b), seed=k, rounds=(a, b)))
        unpaired.append(compare(pooled(a), pooled(b), seed=k))
    assert all(c.method == "paired" for c in paired)
    # Paired: the 5% difference is found (in 96% of cases: 9 of 10 rounds or more above 1, each
    # with probability 0.97) and the interval holds it; unpaired: the machine's 25% swings hide it.
    assert np.mean([c.significant for c in paired]) >= 0.85
    assert np.mean([c.ratio_median_ci[0] <= 1.05 <= c.ratio_median_ci[1] for c in paired]) >= 0.9
    assert np.mean([c.significant for c in unpaired]) <= 0.1
    assert 5 * np.mean([width(c.ratio_median_ci) for c in paired]) < np.mean(
        [width(c.ratio_median_ci) for c in unpaired]
    )


def test_paired_p_value_is_the_sign_test_over_rounds() -> None:
    """Known truth: with 9 of 10 rounds slower, the two-sided sign test gives 2 * 11 / 1024;
    with 8 of 10, 2 * 56 / 1024. The interval excludes 1 in the first case only."""
    rng = np.random.default_rng(18)
    base = [result(lognormal_run(rng, 50)) for _ in range(10)]
    for faster, p in ((1, 2 * 11 / 1024), (2, 2 * 56 / 1024)):
        scales = [0.95] * faster + [1.05] * (10 - faster)
        cand = [result(r.samples_ns * s) for r, s in zip(base, scales, strict=True)]
        c = compare(pooled(base), pooled(cand), rounds=(base, cand))
        assert c.p_value == pytest.approx(p)
        assert c.significant == (p < 0.05) and (c.verdict == "slower") == (p < 0.05)


def test_twice_as_slow_is_slower_with_a_tight_ratio() -> None:
    rng = np.random.default_rng(11)
    a = rng.lognormal(11, 0.1, 5000)
    b = 2.0 * rng.lognormal(11, 0.1, 5000)
    c = compare(result(a), result(b))
    assert c.verdict == "slower" and c.significant
    lo, hi = c.ratio_median_ci
    assert lo <= 2.0 <= hi
    # Half-width of log ratio: 1.96 * sigma * sqrt(pi / (2n)) * sqrt(2) (analytic), within 30%.
    analytic = Z95 * 0.1 * np.sqrt(np.pi / 5000)
    assert 0.7 < np.log(hi / lo) / 2 / analytic < 1.3
    assert c.slower_by_more_than(0.05) and not c.slower_by_more_than(1.5)
    assert c.ratio_p99_ci[0] <= 2.0 <= c.ratio_p99_ci[1]
    assert c.hl_shift_ci_ns[0] < c.hl_shift_ns < c.hl_shift_ci_ns[1]
    back = compare(result(b), result(a))
    assert back.verdict == "faster" and not back.slower_by_more_than(0.05)


def test_small_real_differences_below_the_threshold_are_not_called() -> None:
    rng = np.random.default_rng(13)
    a = rng.normal(1e5, 500, 20_000)
    b = rng.normal(1.01e5, 500, 20_000)  # 1% slower: significant, but under the 2% threshold
    c = compare(result(a), result(b))
    assert c.significant and c.verdict == "no significant difference"
    assert compare(result(a), result(b), threshold=0.005).verdict == "slower"


def test_correlated_runs_get_wider_ratio_intervals() -> None:
    rng = np.random.default_rng(14)
    parts = [rng.normal(160e3 if k % 2 else 205e3, 3e3, 800) for k in range(10)]
    a = np.concatenate(parts)
    b = np.concatenate(parts[1:] + parts[:1]) * 1.01
    c = compare(result(a), result(b))
    lo, hi = c.ratio_median_ci
    assert hi - lo > 0.05  # the batch bootstrap, not the sample-by-sample one


def _two_state_run(rng: np.random.Generator, slow_share: float, scale: float = 1.0) -> np.ndarray:
    """A run on a machine that is 25% slower for a stretch of it (the slow stretch at the end)."""
    n = 12_000
    slow = int(n * slow_share)
    fast = rng.normal(160e3, 2e3, n - slow)
    return scale * np.concatenate([fast, rng.normal(200e3, 3e3, slow)])


def test_separate_runs_in_different_machine_states_are_not_a_difference() -> None:
    rng = np.random.default_rng(15)
    a = _two_state_run(rng, 0.7)  # median in the slow state
    b = _two_state_run(rng, 0.2)  # median in the fast state
    plain = np.median(b) / np.median(a)
    assert plain < 0.85  # what a comparison blind to the machine's states would call faster
    c = compare(result(a), result(b))
    assert c.method == "machine-variation" and c.machine_variation is not None and c.machine_variation > 0.2
    assert c.verdict == "no significant difference"
    assert c.ratio_median == pytest.approx(plain, rel=1e-4) and c.ratio_median_all == c.ratio_median
    # A real difference larger than the machine's variation is still found.
    slow_model = compare(result(a), result(_two_state_run(rng, 0.5, scale=2.0)))
    assert slow_model.verdict == "slower" and slow_model.ratio_median_ci[0] > 1.4
    # A steady run keeps the tight interval.
    steady = compare(result(rng.normal(1e5, 1e3, 8000)), result(rng.normal(1e5, 1e3, 8000)))
    assert steady.method == "independent" and steady.machine_variation is None


def test_refuses_different_models_or_machines() -> None:
    x = np.arange(100) + 1000
    assert check_comparable(result(x), result(x)) is None
    assert "different models" in (check_comparable(result(x), result(x, sha="other")) or "")
    other = {"cpu": {"model": "another cpu", "logical_cores": 2}}
    assert "different machines" in (check_comparable(result(x), result(x, env=other)) or "")


def test_json_round_trip_and_schema_checks(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    r = result(rng.lognormal(10, 0.3, 600))
    path = tmp_path / "r.json"
    r.to_json(path)
    (back,) = load_json(path)
    assert np.array_equal(back.samples_ns, r.samples_ns) and back.stats == r.stats
    doc = json.loads(path.read_text())
    doc["schema"] = "inferspeed/99"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="inferspeed/99"):
        load_json(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        load_json(path)
    path.write_text(json.dumps({"schema": "pyperf"}))
    with pytest.raises(InputError, match="not an inferspeed result"):
        load_json(path)


def test_cli_compare_gate(models: dict[str, str], tmp_path: Path) -> None:
    paths = {}
    for name in ("mlp3", "mlp6"):
        paths[name] = tmp_path / f"{name}.json"
        p = cli("run", models[name], "--threads", "1", "-t", "0.5", "-q", "--json", str(paths[name]))
        assert p.returncode == 0, p.stderr
    p = cli("compare", str(paths["mlp3"]), str(paths["mlp6"]))
    assert p.returncode == 2 and "different models" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    slower = cli("compare", str(paths["mlp3"]), str(paths["mlp6"]), "--force", "--fail-if-slower", "5%")
    assert slower.returncode == 1, slower.stdout + slower.stderr
    assert "slower" in slower.stdout
    faster = cli("compare", str(paths["mlp6"]), str(paths["mlp3"]), "--force", "--fail-if-slower", "5%")
    assert faster.returncode == 0 and "faster" in faster.stdout
    # Gates may allow more than a doubling: 900% is a median ratio of 10, which 2x passes; the
    # table's threshold is the gate's, so it does not say "slower" above a pass.
    wide = cli("compare", str(paths["mlp3"]), str(paths["mlp6"]), "--force", "--fail-if-slower", "900%")
    assert wide.returncode == 0, wide.stdout + wide.stderr
    assert "no significant difference" in wide.stdout and "threshold 900%" in wide.stdout
    bad = cli("compare", str(paths["mlp3"]), str(paths["mlp6"]), "--fail-if-slower", "0%")
    assert bad.returncode == 2 and "positive percentage" in bad.stderr
    out = cli("compare", str(paths["mlp3"]), str(paths["mlp3"]), "--json")
    (c,) = json.loads(out.stdout)
    assert c["verdict"] == "no significant difference" and c["ratio_median"] == 1.0


def test_cli_interleaved_models(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "both.json"
    flags = ["--threads", "1", "-t", "2", "--rounds", "6", "--json", str(out)]

    def check() -> tuple[bool, tuple[Any, float]]:
        p = cli("run", models["mlp3"], models["mlp6"], *flags)
        assert p.returncode == 0, p.stderr
        results = json.loads(out.read_text())["results"]
        ratio = results[1]["stats"]["median_ns"] / results[0]["stats"]["median_ns"]
        return 1.6 < ratio < 2.4 and "slower" in p.stdout, (p, ratio)

    p, ratio = until(check)
    assert "interleaved in 6 rounds" in p.stdout and "slower" in p.stdout
    results = json.loads(out.read_text())["results"]
    assert [r["model"]["name"] for r in results] == ["mlp3.onnx", "mlp6.onnx"]
    assert 1.6 < ratio < 2.4
    assert results[0]["loop"]["rounds"] == 6


def test_bad_compare_inputs(tmp_path: Path) -> None:
    missing = cli("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    one = tmp_path / "one.json"
    one.write_text(result(np.arange(50) + 10).to_json())
    alone = cli("compare", str(one))
    assert alone.returncode == 2 and "at least two results" in alone.stderr


def test_cli_interleaved_thread_counts(models: dict[str, str]) -> None:
    p = cli("run", models["mlp_small"], "--threads", "1,2", "-t", "0.6", "--rounds", "3", "--dim", "batch=8")
    assert p.returncode == 0, p.stderr
    assert "threads=1" in p.stdout and "threads=2" in p.stdout and "interleaved in 3 rounds" in p.stdout


def test_median_ratio_interval_with_many_tied_samples() -> None:
    """Whole-nanosecond samples of a fast model are mostly a few values around the median, and
    a long tail: the standard error must come out finite (Maritz-Jarrett on the raw values
    cancelled to the square root of a negative, and the interval fell back to the extremes:
    1e5 ns samples in a 5 us run made it 1000x wide)."""
    rng = np.random.default_rng(3)

    def run(center: float) -> np.ndarray:
        x = np.round(rng.normal(center, 3, 40_000))
        x[-400:] = rng.uniform(1e5, 5e6, 400)
        return x.astype(np.int64)

    a, b = result(run(5000)), result(run(5200))
    c = compare(a, b)
    lo, hi = c.ratio_median_ci
    assert lo < 1.04 < hi and hi / lo < 1.01, c.ratio_median_ci
    assert c.verdict == "slower"
