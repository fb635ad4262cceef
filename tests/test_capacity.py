"""The capacity search on a server with a known latency curve: a fake session whose p99 at each
arrival rate is set in advance, so the SLO (or keeping up) decides the rate found, exactly,
whatever the machine running the tests does meanwhile. The search on a real model is in
tests/test_scenarios.py; the command's light-load refusal on a real model is here."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from inferspeed.analysis.capacity import (
    KEEP_UP,
    TOLERANCE,
    CapacityResult,
    judge_step,
    percentile_with_interval,
    step_requests,
)
from inferspeed.report.text import render_capacity
from inferspeed.stats.summary import quantile_ci
from inferspeed.tools.capacity import find_capacity

from .test_cli import cli

#: The fake server: one worker, each call SERVICE_NS, so at most MU requests per second.
SERVICE_NS = 1_000_000
MU = 1e9 / SERVICE_NS


def p99_at(rate: float) -> int:
    """The fake server's p99 latency at an arrival rate: queueing makes it grow without bound
    toward MU (SERVICE_NS / (1 - rate / MU)); past MU it is a growing queue's, far above."""
    load = rate / MU
    return int(SERVICE_NS / (1.0 - load)) if load < 0.99 else 1000 * SERVICE_NS


def _samples(n: int, top: float) -> np.ndarray:
    """n latencies, 95% spread over 0.3-0.9 of ``top`` and 5% at ``top``: their p99, and both
    ends of its 95% interval (from 368 samples on), are exactly ``top``."""
    tail = n // 20
    return np.concatenate([np.linspace(0.3 * top, 0.9 * top, n - tail), np.full(tail, top)]).astype(np.int64)


class FakeSession:
    """What find_capacity uses of a Session: ``config.concurrency`` and ``measure()``. A server
    step holds round(rate x seconds) requests (as a real schedule does) with p99 p99_at(rate)
    plus ``floor_ns``, the server's own lateness; with ``floor_ns`` each request found a worker
    idle unless the load (rate / MU) made it wait. The single stream is the server at no load,
    without the lateness."""

    def __init__(self, floor_ns: float = 0.0) -> None:
        self.config = SimpleNamespace(concurrency=1)
        self.calls: list[dict[str, Any]] = []
        self.floor_ns = floor_ns

    def measure(self, *, scenario: str, qps: float | None, **options: Any) -> Any:
        self.calls.append({"scenario": scenario, "qps": qps, **options})
        if scenario == "single-stream":  # a call every SERVICE_NS, up to the loop's limits
            n = min(options.get("iterations") or 10**9, round(options["max_time"] * MU))
            return SimpleNamespace(samples_ns=_samples(n, SERVICE_NS), scenario_stats={})
        if scenario == "offline":
            return SimpleNamespace(scenario_stats={"throughput_per_s": MU})
        assert scenario == "server" and qps is not None
        n = max(1, round(qps * options["duration"]))
        figures: dict[str, Any] = {"achieved_qps": min(qps, MU)}
        if self.floor_ns:  # the share of requests that queued (or of time busy) is the load
            figures["scheduler_lateness_stats"] = {"count": round(n * max(0.0, 1.0 - qps / MU))}
            figures["service_stats"] = {"mean_ns": SERVICE_NS}
        return SimpleNamespace(samples_ns=_samples(n, p99_at(qps) + self.floor_ns), scenario_stats=figures)


def _decided_by(found: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The step at the rate found and the lowest failed step above it (the search's bracket)."""
    at = next(st for st in found.steps if st["qps"] == found.capacity_qps)
    above = min((st for st in found.steps if st["qps"] > found.capacity_qps), key=lambda st: st["qps"])
    return at, above


@pytest.mark.parametrize("best_rate", [300.0, 600.0, 800.0])
def test_the_slo_decides_the_rate_found(best_rate: float) -> None:
    """An SLO equal to the p99 at best_rate: the rate found meets it, within the search's
    tolerance below best_rate; the next rate tried above it misses it, by its p99 (the server
    still keeps up there), and says so."""
    slo = float(p99_at(best_rate))
    session = FakeSession()
    found = find_capacity(session, 99.0, slo, step_time=0.5, max_step_time=8.0)
    assert found.capacity_qps is not None
    assert best_rate * (1 - TOLERANCE) <= found.capacity_qps <= best_rate
    at, above = _decided_by(found)
    assert at["passed"] is True and at["latency_ns"] == p99_at(at["qps"]) <= slo
    assert above["passed"] is False and above["latency_ns"] == p99_at(above["qps"]) > slo
    assert above["achieved_qps"] >= KEEP_UP * above["qps"]  # the SLO failed it, not the rate
    assert above["reason"].startswith("p99 ") and " above the SLO " in above["reason"]
    assert "could not keep up" not in above["reason"]
    assert above["qps"] - at["qps"] <= TOLERANCE * above["qps"]
    # Every step's verdict is its own p99 against the SLO, each decided on its first run (the
    # interval is exact), and the rate found is the highest that passed.
    assert all(st["passed"] == (st["latency_ns"] <= slo) for st in found.steps)
    assert found.capacity_qps == max(st["qps"] for st in found.steps if st["passed"])
    kinds = [c["scenario"] for c in session.calls]
    assert kinds[: kinds.index("offline")] == ["single-stream"] * 2 and found.offline_throughput_per_s == MU
    assert found.light_load is not None and found.light_load["met"] is True
    assert found.light_load["latency_ns"] == SERVICE_NS and found.light_load["calls"] == 1000


class TurnsSlowSession(FakeSession):
    """A machine that turns ``factor`` times slower after its first ``fast_steps`` server
    steps: from then on a rate's p99 is that of a rate ``factor`` times higher."""

    def __init__(self, fast_steps: int, factor: float = 1.1) -> None:
        super().__init__()
        self.fast_steps, self.factor = fast_steps, factor

    def measure(self, *, scenario: str, qps: float | None, **options: Any) -> Any:
        result = super().measure(scenario=scenario, qps=qps, **options)
        served = sum(c["scenario"] == "server" for c in self.calls)
        if scenario == "server" and qps is not None and served > self.fast_steps:
            result.samples_ns = _samples(result.samples_ns.size, p99_at(min(self.factor * qps, 0.99 * MU)))
        return result


def test_the_rate_found_is_run_again_and_a_failed_rerun_sends_the_search_below_it() -> None:
    """The rate found is confirmed by a re-run of twice the step time. A re-run that fails (the
    machine turned slow) is a failure at that rate, with its reason; the search goes on below
    it and reports a rate that passed twice."""
    slo = float(p99_at(600.0))
    steady = find_capacity(FakeSession(), 99.0, slo, step_time=0.5, max_step_time=8.0)
    confirm = [st for st in steady.steps if st.get("confirm")]
    assert len(confirm) == 1 and confirm[0]["qps"] == steady.capacity_qps and confirm[0]["passed"]
    assert confirm[0]["duration_s"] >= 1.0  # twice the step time
    session = TurnsSlowSession(fast_steps=len(steady.steps) - 1)  # slow from the re-run on
    found = find_capacity(session, 99.0, slo, step_time=0.5, max_step_time=8.0)
    assert found.capacity_qps is not None
    slow_best = 600.0 / session.factor  # the SLO's rate on the slow machine
    assert slow_best * (1 - 2 * TOLERANCE) <= found.capacity_qps <= slow_best
    reruns = [st for st in found.steps if st.get("confirm")]
    # The first re-run (of the rate the fast machine found) failed, and every re-run until the last.
    assert len(reruns) >= 2 and reruns[0]["qps"] == steady.capacity_qps
    assert not any(st["passed"] for st in reruns[:-1])
    assert all(st["reason"].startswith("the re-run of the rate found failed: p99 ") for st in reruns[:-1])
    assert reruns[-1]["passed"] and reruns[-1]["qps"] == found.capacity_qps
    # The capacity passed twice: in the search and in its re-run.
    assert sum(st["passed"] for st in found.steps if st["qps"] == found.capacity_qps) == 2


@pytest.mark.parametrize(("percentile", "least"), [(99.0, 1000), (99.9, 10_000), (90.0, 334), (50.0, 334)])
def test_every_step_holds_the_minimum_requests_for_its_percentile(percentile: float, least: int) -> None:
    """About ten requests beyond the percentile (p99: 1000, p99.9: 10,000), never fewer than
    keeping up needs: every step holds them, lengthened beyond --step-time where its rate
    needs it, and so does the single-stream check. With that many, the percentile's interval
    has both bounds and contains its estimate."""
    assert step_requests(percentile) == least
    lo, hi = quantile_ci(np.arange(least, dtype=np.float64), percentile / 100.0)
    assert lo is not None and hi is not None
    session = FakeSession()
    found = find_capacity(session, percentile, float(p99_at(500.0)), step_time=0.2, max_step_time=100.0)
    assert found.min_requests == least and found.steps
    for st in found.steps:
        assert st["requests"] >= least, st
        first = max(0.2, least / st["qps"])  # lengthened to hold the minimum; doubled while undecided
        assert st["duration_s"] / first in (pytest.approx(1.0), pytest.approx(2.0), pytest.approx(4.0))
        lo, hi = st["ci95_ns"]
        assert lo <= st["latency_ns"] <= hi
    server = [c for c in session.calls if c["scenario"] == "server"]
    assert all(round(c["qps"] * c["duration"]) >= least for c in server)
    light = [c for c in session.calls if c["scenario"] == "single-stream"]
    assert found.light_load is not None and found.light_load["calls"] >= least
    # A step's length first (200 calls of the fake's 1 ms), then the minimum where that held fewer.
    assert [c.get("iterations") for c in light] == [None] + ([least] if least > 200 else [])


def test_an_undecided_step_runs_longer_then_goes_by_its_point_estimate() -> None:
    """The p50 of a step near the SLO has an interval that straddles it: the step is run again
    for twice as long, up to max_step_time, and if it still straddles, decided on its point
    estimate, which its reason says. A step whose interval is on one side of the SLO is decided
    on its first run."""
    slo = float(p99_at(600.0))
    session = FakeSession()
    found = find_capacity(session, 50.0, slo, step_time=0.5, max_step_time=1.0)
    undecided = []
    for st in (st for st in found.steps if not st.get("confirm")):
        lo, hi = st["ci95_ns"]
        tries = [c["duration"] for c in session.calls if c["qps"] == st["qps"]]
        first = max(0.5, step_requests(50.0) / st["qps"])  # lengthened to hold the minimum
        expected = [first, 2 * first] if st["duration_s"] == 2 * first else [first]
        # The rate found is run again after the search (its confirmation); no other rate is.
        assert tries[: len(expected)] == expected
        assert len(tries) == len(expected) or st["qps"] == found.capacity_qps
        assert st["passed"] == (st["latency_ns"] <= slo)
        if lo <= slo < hi:
            assert st["duration_s"] == 1.0 and st["reason"].startswith("decided on the estimate")
            undecided.append(st["passed"])
    # The search came near the SLO from both sides: a straddling step passed, another failed.
    assert sorted(undecided) == [False, True]


def test_a_server_that_cannot_keep_up_fails_whatever_its_latency_and_says_so() -> None:
    """An SLO no rate misses: the rate found is the highest the server keeps up with
    (achieved >= KEEP_UP x offered), here MU / KEEP_UP; the step above it fails with the
    rates served and scheduled in its reason, though its p99 is within the SLO."""
    found = find_capacity(FakeSession(), 99.0, 1e12, step_time=0.5)
    limit = MU / KEEP_UP
    assert found.capacity_qps is not None
    assert limit * (1 - TOLERANCE) <= found.capacity_qps <= limit
    at, above = _decided_by(found)
    assert at["passed"] is True and above["passed"] is False
    assert above["achieved_qps"] < KEEP_UP * above["qps"] and above["latency_ns"] < 1e12
    served = f"served {above['achieved_qps']:.1f}/s of the {above['qps']:.1f}/s scheduled"
    assert above["reason"].startswith(f"could not keep up: {served}"), above["reason"]
    failed = [line for line in render_capacity(found).splitlines() if "FAIL" in line]
    assert failed and all("FAIL: could not keep up: served" in line for line in failed)


def test_an_slo_below_the_single_stream_percentile_is_refused_before_any_search() -> None:
    """Server latency is never below a single call's: an SLO under the single-stream p99 is
    missed at every rate. The search stops there, runs no offline bound and no server step,
    and says so in one line."""
    session = FakeSession()
    found = find_capacity(session, 99.0, SERVICE_NS / 2, step_time=0.5)
    assert {c["scenario"] for c in session.calls} == {"single-stream"}
    assert found.capacity_qps is None and found.steps == [] and not found.met_at_light_load
    assert found.offline_throughput_per_s is None
    text = render_capacity(found)
    assert len(text.splitlines()) == 1
    assert text.startswith("not met even at light load: single-stream p99 is 1.00 ms (SLO 500 µs;"), text
    assert CapacityResult.from_dict(json.loads(json.dumps(found.to_dict()))) == found


def test_a_server_whose_own_floor_misses_the_slo_stops_at_light_load() -> None:
    """The single stream meets the SLO but every server request pays 3 ms of scheduler
    lateness: once a failing step had fewer requests queued than lie beyond the p99, its tail
    is the floor, so the search stops instead of walking to ever slower, longer steps."""
    session = FakeSession(floor_ns=3 * SERVICE_NS)
    found = find_capacity(session, 99.0, 2.5 * SERVICE_NS, step_time=0.5, max_step_time=1000.0)
    assert found.capacity_qps is None and found.met_at_light_load
    last = found.steps[-1]
    assert last["light_load"] and last["queued_share"] < 0.01 and not last["passed"]
    assert last["utilisation"] == pytest.approx(last["qps"] / MU)
    assert "at light load: " in last["reason"] and "% of " in last["reason"]
    assert "queueing does not explain it" in last["reason"]
    assert not any(st["light_load"] for st in found.steps[:-1])
    assert found.note is not None and found.note.startswith("not met even at light load: at ")
    assert all(st["qps"] >= last["qps"] for st in found.steps)


def test_rates_too_slow_to_hold_the_minimum_are_never_tried() -> None:
    """A server that misses the SLO at every rate it can be judged at: the slowest step tried
    is the one that holds the minimum within max_step_time, and the note says why no slower
    rate was tried."""
    session = FakeSession(floor_ns=3 * SERVICE_NS)
    found = find_capacity(session, 99.0, 2.5 * SERVICE_NS, step_time=0.5, max_step_time=5.0)
    assert found.capacity_qps is None
    assert min(st["qps"] for st in found.steps) == pytest.approx(1000 / 5.0)
    assert all(st["duration_s"] <= 5.0 and st["requests"] >= 1000 for st in found.steps)
    assert found.note is not None and "would need a step over 5 s to hold 1000 requests" in found.note


@pytest.mark.parametrize(("n", "percentile"), [(2, 99.0), (3, 99.9), (10, 99.9), (25, 99.9)])
def test_intervals_contain_their_estimates(n: int, percentile: float) -> None:
    """Few samples: the order statistic that bounds a high quantile from below is the largest
    sample, above numpy's interpolated estimate. The interval printed is widened to the
    estimate (more coverage, never less); the step it belongs to fails as too short."""
    x = np.geomspace(1e6, 5e6, n).astype(np.int64)
    raw_lo, _ = quantile_ci(np.sort(x).astype(np.float64), percentile / 100.0)
    value, lo, hi = percentile_with_interval(x, percentile)
    assert raw_lo is not None and raw_lo > value  # what the bare order statistics give
    assert lo is not None and lo <= value and (hi is None or value <= hi)
    result: Any = SimpleNamespace(samples_ns=x, scenario_stats={"achieved_qps": 10.0, "scheduled_qps": 10.0})
    step = judge_step(result, 10.0, percentile, 1e9, 1.0, step_requests(percentile))
    assert step["ci95_ns"][0] <= step["latency_ns"] and step["passed"] is False
    assert step["reason"].startswith(f"too few requests to judge: {n} of the ")


def test_a_capacity_document_reads_back_with_older_documents_too() -> None:
    found = find_capacity(FakeSession(), 99.0, float(p99_at(600.0)), step_time=0.5)
    assert CapacityResult.from_dict(json.loads(json.dumps(found.to_dict()))) == found
    old = {"slo": {"percentile": 99.0, "latency_ns": 5e6}, "offline_throughput_per_s": 10.0, "steps": []}
    read = CapacityResult.from_dict(old)
    assert read.light_load is None and read.met_at_light_load and read.min_requests is None


def test_cli_not_met_at_light_load_is_one_line_and_exit_1(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "cap.json"
    p = cli("capacity", models["add"], "--threads", "1", "--slo", "p99=1ns", "--json", str(out))
    assert p.returncode == 1, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, p.stdout
    assert lines[0].startswith("not met even at light load: single-stream p99 is "), p.stdout
    assert "(SLO 1 ns;" in lines[0]
    doc = json.loads(out.read_text())
    assert doc["capacity_qps"] is None and doc["light_load"]["met"] is False and doc["steps"] == []


def test_cli_refuses_min_requests_too_few_for_the_percentile(models: dict[str, str]) -> None:
    p = cli("capacity", models["add"], "--slo", "p99=5ms", "--min-requests", "100")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--min-requests 100 is too few for a p99" in lines[0], p.stderr


def test_the_old_home_of_find_capacity_still_works_with_a_deprecation_warning() -> None:
    """find_capacity runs measurements, so it moved from the analysis layer (decisions over
    results) to the tools layer; its old name keeps working for one release and says so."""
    import inferspeed.analysis.capacity as old

    with pytest.warns(DeprecationWarning, match="use inferspeed.tools.capacity.find_capacity"):
        assert old.find_capacity is find_capacity
    with pytest.raises(AttributeError):
        _ = old.no_such_name
