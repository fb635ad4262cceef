"""``inferspeed capacity``: the highest arrival rate whose latency percentile meets an SLO.

First the offline throughput of the same number of workers bounds the search; then a bisection
over arrival rates runs the server scenario at each rate for at least ``step_time`` seconds. A
step passes when the server keeps up (achieved >= KEEP_UP x the rate its schedule offers) and
the percentile's 95% confidence interval lies below the SLO; it fails when the interval lies
above it. When the
interval straddles the SLO, the step is run again for twice as long (up to ``max_step_time``)
and then decided on the point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..stats.summary import quantile_ci

if TYPE_CHECKING:
    from ..measure.session import Session

__all__ = ["CapacityResult", "find_capacity"]

#: A step keeps up when it serves at least this fraction of the offered rate.
KEEP_UP = 0.97
#: The search stops when the bracket is narrower than this fraction of the rate.
TOLERANCE = 0.03


@dataclass(frozen=True)
class CapacityResult:
    """The rate found and every step walked (in the order they ran)."""

    percentile: float
    slo_ns: float
    concurrency: int
    offline_throughput_per_s: float
    capacity_qps: float | None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": "capacity",
            "slo": {"percentile": self.percentile, "latency_ns": self.slo_ns},
            "concurrency": self.concurrency,
            "offline_throughput_per_s": self.offline_throughput_per_s,
            "capacity_qps": self.capacity_qps,
            "steps": self.steps,
        }


def _step(session: Session, qps: float, percentile: float, slo_ns: float, seconds: float) -> dict[str, Any]:
    r = session.measure(scenario="server", qps=qps, duration=seconds, warmup_time=0.05)
    latency = np.sort(r.samples_ns)
    q = percentile / 100.0
    value = float(np.percentile(latency, percentile))
    lo, hi = quantile_ci(latency, q)
    achieved = float(r.scenario_stats["achieved_qps"])
    # Against the rate this seeded schedule offers, not the nominal one: a short step's Poisson
    # draw can be far from it (measure.scenarios.scheduled_rate).
    scheduled = float(r.scenario_stats.get("scheduled_qps") or qps)
    keeps_up = achieved >= KEEP_UP * scheduled
    if not keeps_up or (lo is not None and lo > slo_ns):
        verdict: bool | None = False
    elif hi is not None and hi <= slo_ns:
        verdict = True
    else:
        verdict = None  # the interval straddles the SLO: undecided
    return {
        "qps": qps,
        "scheduled_qps": scheduled,
        "achieved_qps": achieved,
        "duration_s": seconds,
        "latency_ns": value,
        "ci95_ns": [lo, hi],
        "passed": verdict,
    }


def find_capacity(
    session: Session,
    percentile: float,
    slo_ns: float,
    *,
    step_time: float = 2.0,
    max_step_time: float = 8.0,
    max_steps: int = 14,
) -> CapacityResult:
    """Search the highest server arrival rate (``session.config.concurrency`` workers) whose
    ``percentile`` latency stays within ``slo_ns``."""
    offline = session.measure(scenario="offline", qps=None, duration=step_time, warmup_time=0.05)
    throughput = float(offline.scenario_stats["throughput_per_s"])
    steps: list[dict[str, Any]] = []
    lo, hi = 0.0, 1.3 * throughput  # lo passed (0 trivially); hi assumed to fail
    rate = 0.9 * throughput
    for _ in range(max_steps):
        seconds = step_time
        step = _step(session, rate, percentile, slo_ns, seconds)
        while step["passed"] is None and seconds * 2 <= max_step_time:
            seconds *= 2
            step = _step(session, rate, percentile, slo_ns, seconds)
        if step["passed"] is None:
            step["passed"] = (
                step["latency_ns"] <= slo_ns and step["achieved_qps"] >= KEEP_UP * step["scheduled_qps"]
            )
        steps.append(step)
        if step["passed"]:
            lo = rate
        else:
            hi = rate
        if hi - lo <= TOLERANCE * hi:
            break
        rate = (lo + hi) / 2.0
    return CapacityResult(
        percentile=percentile,
        slo_ns=slo_ns,
        concurrency=session.config.concurrency,
        offline_throughput_per_s=throughput,
        capacity_qps=lo if lo > 0 else None,
        steps=steps,
    )
