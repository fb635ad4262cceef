"""inferspeed.timeit: any Python callable timed in the C++ loop."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import inferspeed
from inferspeed.report.text import render_result

from .conftest import until


def _spin(microseconds: float) -> None:
    end = time.perf_counter_ns() + int(microseconds * 1000)
    while time.perf_counter_ns() < end:
        pass


def test_empty_callable_overhead_is_well_under_a_microsecond() -> None:
    r = inferspeed.timeit(lambda: None, max_time=0.2, warmup_time=0.02)
    assert r.loop["loop_overhead_ns"] is not None and r.loop["loop_overhead_ns"] < 1000
    assert r.stats.median_ns < 1000
    assert r.model["name"].endswith("<lambda>") and r.model["kind"] == "callable"
    text = render_result(r)
    assert "callable" in text and "empty callable takes" in text


def test_busy_wait_of_100_us_is_measured_within_2_percent() -> None:
    def check() -> tuple[bool, Any]:
        r = inferspeed.timeit(_spin, 100, max_time=0.5, warmup_time=0.05)
        return abs(r.stats.median_ns / 100_000 - 1) < 0.02, r.stats.median_ns

    median = until(check)
    assert abs(median / 100_000 - 1) < 0.02, median


def test_arguments_and_keywords_reach_the_callable() -> None:
    seen: list[tuple[Any, ...]] = []

    def f(a: int, b: int = 0, *, c: str = "") -> None:
        if len(seen) < 3:
            seen.append((a, b, c))

    r = inferspeed.timeit(f, 1, 2, kwargs={"c": "x"}, iterations=50, warmup_iterations=0)
    assert seen[0] == (1, 2, "x") and r.stats.count == 50


def test_batched_mode_reports_per_call_times() -> None:
    calls = 0

    def f() -> None:
        nonlocal calls
        calls += 1

    r = inferspeed.timeit(f, batch=100, iterations=200, warmup_iterations=10)
    assert r.stats.count == 200 and calls >= 100 * 210  # overhead loop calls the empty one
    single = inferspeed.timeit(f, iterations=2000, warmup_iterations=10)
    # Per-call times: the batched figure sheds the clock pair, so it is not larger.
    assert r.stats.median_ns <= single.stats.median_ns * 1.5
    assert r.loop["batch"] == 100 and r.config["batch"] == 100


def test_adaptive_stopping_and_ordering() -> None:
    r = inferspeed.timeit(_spin, 20, target_ci=0.02, max_time=3, warmup_time=0.02)
    assert r.stopping is not None and r.stopping["met"]

    def check() -> tuple[bool, Any]:
        a = inferspeed.timeit(_spin, 20, max_time=0.2, warmup_time=0.02).stats.median_ns
        b = inferspeed.timeit(_spin, 60, max_time=0.2, warmup_time=0.02).stats.median_ns
        return 2.5 < b / a < 3.5, (a, b)

    a, b = until(check)
    assert 2.5 < b / a < 3.5, (a, b)


def test_exceptions_and_bad_options() -> None:
    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        inferspeed.timeit(boom, max_time=0.1)
    with pytest.raises(inferspeed.ConfigError):
        inferspeed.timeit(42, max_time=0.1)  # type: ignore[arg-type]
    with pytest.raises(inferspeed.ConfigError):
        inferspeed.timeit(lambda: None, batch=0)
    with pytest.raises(inferspeed.ConfigError, match="loop options"):
        inferspeed.timeit(lambda: None, threads=2)
    with pytest.raises(inferspeed.ConfigError):
        inferspeed.timeit(lambda: None, max_time=-1)


def test_result_round_trips_through_json(tmp_path: Any) -> None:
    r = inferspeed.timeit(np.add, 1.0, 2.0, iterations=1000, warmup_iterations=10)
    path = tmp_path / "t.json"
    r.to_json(path)
    back = inferspeed.load_json(path)[0]
    assert back.model["kind"] == "callable" and back.stats.count == 1000
    assert back.loop["loop_overhead_ns"] == r.loop["loop_overhead_ns"]
