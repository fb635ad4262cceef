"""Comparisons with significance, the JSON loader, and several models measured interleaved."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferspeed import InputError, Result, summarize
from inferspeed.analysis.compare import check_comparable, compare
from inferspeed.results.result import load_json

from .conftest import until
from .test_cli import cli

ENV = {"cpu": {"model": "test cpu", "logical_cores": 2}}


def result(samples: np.ndarray, sha: str = "same", env: dict[str, object] | None = None) -> Result:
    x = np.asarray(samples).astype(np.int64)
    return Result(x, summarize(x), {"name": sha, "sha256": sha}, {}, env or ENV)


def test_same_distribution_is_no_significant_difference() -> None:
    rng = np.random.default_rng(10)
    verdicts = [
        compare(result(rng.lognormal(11, 0.2, 3000)), result(rng.lognormal(11, 0.2, 3000)), seed=k).verdict
        for k in range(10)
    ]
    assert verdicts.count("no significant difference") >= 9


def test_twice_as_slow_is_slower_with_a_tight_ratio() -> None:
    rng = np.random.default_rng(11)
    a = rng.lognormal(11, 0.1, 5000)
    b = 2.0 * rng.lognormal(11, 0.1, 5000)
    c = compare(result(a), result(b))
    assert c.verdict == "slower" and c.significant
    assert 1.9 < c.ratio_median < 2.1
    assert 1.8 < c.ratio_median_ci[0] <= c.ratio_median <= c.ratio_median_ci[1] < 2.2
    assert c.slower_by_more_than(0.05) and not c.slower_by_more_than(1.5)
    assert c.ratio_p99_ci[0] <= c.ratio_p99 <= c.ratio_p99_ci[1] and 1.7 < c.ratio_p99 < 2.3
    assert c.hl_shift_ci_ns[0] < c.hl_shift_ns < c.hl_shift_ci_ns[1]
    assert c.hl_shift_ns == pytest.approx(np.median(b) - np.median(a), rel=0.05)
    back = compare(result(b), result(a))
    assert back.verdict == "faster" and not back.slower_by_more_than(0.05)


def test_p_value_is_scipys_mann_whitney() -> None:
    from scipy import stats as sps

    rng = np.random.default_rng(12)
    a, b = rng.normal(1e5, 1e3, 400), rng.normal(1.002e5, 1e3, 400)
    c = compare(result(a), result(b))
    expected = sps.mannwhitneyu(a.astype(np.int64), b.astype(np.int64), alternative="two-sided").pvalue
    assert c.p_value == pytest.approx(expected)


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
    # Gates may allow more than a doubling: 900% is a median ratio of 10, which 2x passes.
    wide = cli("compare", str(paths["mlp3"]), str(paths["mlp6"]), "--force", "--fail-if-slower", "900%")
    assert wide.returncode == 0 and "slower" in wide.stdout, wide.stdout + wide.stderr
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
