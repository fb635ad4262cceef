"""The capacity search on a server with a known latency curve: a fake session whose p99 at each
arrival rate is set in advance, so the SLO (or keeping up) decides the rate found, exactly,
whatever the machine running the tests does meanwhile. The search on a real model is in
tests/test_scenarios.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from inferspeed.analysis.capacity import KEEP_UP, TOLERANCE
from inferspeed.tools.capacity import find_capacity

#: The fake server: one worker, each call SERVICE_NS, so at most MU requests per second.
SERVICE_NS = 1_000_000
MU = 1e9 / SERVICE_NS


def p99_at(rate: float) -> int:
    """The fake server's p99 latency at an arrival rate: queueing makes it grow without bound
    toward MU (SERVICE_NS / (1 - rate / MU)); past MU it is a growing queue's, far above."""
    load = rate / MU
    return int(SERVICE_NS / (1.0 - load)) if load < 0.99 else 1000 * SERVICE_NS


class FakeSession:
    """What find_capacity uses of a Session: ``config.concurrency`` and ``measure()``. A server
    step's latencies are 95% spread over 0.3-0.9 of p99_at(rate) and 5% at p99_at(rate): the
    step's p99, and both ends of its 95% interval, are exactly p99_at(rate)."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(concurrency=1)
        self.calls: list[dict[str, Any]] = []

    def measure(self, *, scenario: str, qps: float | None, duration: float, warmup_time: float) -> Any:
        self.calls.append({"scenario": scenario, "qps": qps, "duration": duration})
        if scenario == "offline":
            return SimpleNamespace(scenario_stats={"throughput_per_s": MU})
        assert scenario == "server" and qps is not None
        n = max(400, int(qps * duration))
        top = p99_at(qps)
        tail = n // 20
        samples = np.concatenate([np.linspace(0.3 * top, 0.9 * top, n - tail), np.full(tail, top)])
        return SimpleNamespace(
            samples_ns=samples.astype(np.int64), scenario_stats={"achieved_qps": min(qps, MU)}
        )


def _decided_by(found: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The step at the rate found and the lowest failed step above it (the search's bracket)."""
    at = next(st for st in found.steps if st["qps"] == found.capacity_qps)
    above = min((st for st in found.steps if st["qps"] > found.capacity_qps), key=lambda st: st["qps"])
    return at, above


@pytest.mark.parametrize("best_rate", [300.0, 600.0, 800.0])
def test_the_slo_decides_the_rate_found(best_rate: float) -> None:
    """An SLO equal to the p99 at best_rate: the rate found meets it, within the search's
    tolerance below best_rate; the next rate tried above it misses it, by its p99 (the server
    still keeps up there)."""
    slo = float(p99_at(best_rate))
    session = FakeSession()
    found = find_capacity(session, 99.0, slo, step_time=0.5, max_step_time=2.0)
    assert found.capacity_qps is not None
    assert best_rate * (1 - TOLERANCE) <= found.capacity_qps <= best_rate
    at, above = _decided_by(found)
    assert at["passed"] is True and at["latency_ns"] == p99_at(at["qps"]) <= slo
    assert above["passed"] is False and above["latency_ns"] == p99_at(above["qps"]) > slo
    assert above["achieved_qps"] >= KEEP_UP * above["qps"]  # the SLO failed it, not the rate
    assert above["qps"] - at["qps"] <= TOLERANCE * above["qps"]
    # Every step's verdict is its own p99 against the SLO, each decided on its first run (the
    # interval is exact), and the rate found is the highest that passed.
    assert all(st["passed"] == (st["latency_ns"] <= slo) for st in found.steps)
    assert all(st["duration_s"] == 0.5 for st in found.steps)
    assert found.capacity_qps == max(st["qps"] for st in found.steps if st["passed"])
    assert session.calls[0]["scenario"] == "offline" and found.offline_throughput_per_s == MU


def test_a_percentile_other_than_p99_is_the_one_compared() -> None:
    """p50 of the fake server's steps is 0.6 of its p99: an SLO equal to the p99 at 600/s, for
    the p50, lets a higher rate through than the same SLO for the p99."""
    slo = float(p99_at(600.0))
    p50 = find_capacity(FakeSession(), 50.0, slo, step_time=0.5).capacity_qps
    p99 = find_capacity(FakeSession(), 99.0, slo, step_time=0.5).capacity_qps
    assert p50 is not None and p99 is not None
    # p50 at rate r is about 0.6 * SERVICE_NS / (1 - r / MU): it reaches the SLO near 760/s.
    assert 730.0 <= p50 <= 770.0 and p99 <= 600.0


def test_an_undecided_step_runs_longer_then_goes_by_its_point_estimate() -> None:
    """The p50 of a step near the SLO has an interval that straddles it: the step is run again
    for twice as long, up to max_step_time, and if it still straddles, decided on its point
    estimate. A step whose interval is on one side of the SLO is decided on its first run."""
    slo = float(p99_at(600.0))
    session = FakeSession()
    found = find_capacity(session, 50.0, slo, step_time=0.5, max_step_time=1.0)
    undecided = []
    for st in found.steps:
        lo, hi = st["ci95_ns"]
        tries = [c["duration"] for c in session.calls if c["qps"] == st["qps"]]
        assert tries == ([0.5, 1.0] if st["duration_s"] == 1.0 else [0.5])
        assert st["passed"] == (st["latency_ns"] <= slo)
        if lo <= slo < hi:
            assert st["duration_s"] == 1.0
            undecided.append(st["passed"])
    # The search came near the SLO from both sides: a straddling step passed, another failed.
    assert sorted(undecided) == [False, True]


def test_a_server_that_cannot_keep_up_fails_whatever_its_latency() -> None:
    """An SLO no rate misses: the rate found is the highest the server keeps up with
    (achieved >= KEEP_UP x offered), here MU / KEEP_UP."""
    found = find_capacity(FakeSession(), 99.0, 1e12, step_time=0.5)
    limit = MU / KEEP_UP
    assert found.capacity_qps is not None
    assert limit * (1 - TOLERANCE) <= found.capacity_qps <= limit
    at, above = _decided_by(found)
    assert at["passed"] is True and above["passed"] is False
    assert above["achieved_qps"] < KEEP_UP * above["qps"]


def test_no_rate_meets_an_slo_below_the_service_time() -> None:
    found = find_capacity(FakeSession(), 99.0, SERVICE_NS / 2, step_time=0.5, max_steps=6)
    assert found.capacity_qps is None
    assert len(found.steps) == 6 and not any(st["passed"] for st in found.steps)
    assert found.to_dict()["capacity_qps"] is None


def test_the_old_home_of_find_capacity_still_works_with_a_deprecation_warning() -> None:
    """find_capacity runs measurements, so it moved from the analysis layer (decisions over
    results) to the tools layer; its old name keeps working for one release and says so."""
    import inferspeed.analysis.capacity as old

    with pytest.warns(DeprecationWarning, match="use inferspeed.tools.capacity.find_capacity"):
        assert old.find_capacity is find_capacity
    with pytest.raises(AttributeError):
        _ = old.no_such_name
