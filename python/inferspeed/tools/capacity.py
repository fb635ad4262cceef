"""``inferspeed capacity``: the highest arrival rate whose latency percentile meets an SLO.

First the offline throughput of the same number of workers bounds the search; then a bisection
over arrival rates runs the server scenario at each rate for at least ``step_time`` seconds.
Each step is judged by :func:`inferspeed.analysis.capacity.judge_step` (it passes when the
server keeps up and the percentile's 95% interval lies below the SLO, fails when the interval
lies above it); an undecided step is run again for twice as long (up to ``max_step_time``) and
then decided on the point estimate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..analysis.capacity import Bracket, CapacityResult, judge_step, point_verdict

if TYPE_CHECKING:
    from ..measure.session import Session

__all__ = ["find_capacity"]


def _step(session: Session, qps: float, percentile: float, slo_ns: float, seconds: float) -> dict[str, Any]:
    r = session.measure(scenario="server", qps=qps, duration=seconds, warmup_time=0.05)
    return judge_step(r, qps, percentile, slo_ns, seconds)


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
    ``percentile`` latency stays within ``slo_ns``.

    Parameters
    ----------
    session : Session
        The model's session (its config's ``concurrency`` is the number of workers).
    percentile : float
        The SLO's percentile, e.g. 99.0.
    slo_ns : float
        The SLO's latency, in nanoseconds.
    step_time : float
        Seconds the server scenario runs at each rate (and the offline run that bounds it).
    max_step_time : float
        Longest a rate is run when its interval straddles the SLO (doubling from step_time).
    max_steps : int
        Most rates tried.
    """
    offline = session.measure(scenario="offline", qps=None, duration=step_time, warmup_time=0.05)
    throughput = float(offline.scenario_stats["throughput_per_s"])
    steps: list[dict[str, Any]] = []
    bracket = Bracket(0.0, 1.3 * throughput)  # high is assumed to fail
    rate = 0.9 * throughput
    for _ in range(max_steps):
        seconds = step_time
        step = _step(session, rate, percentile, slo_ns, seconds)
        while step["passed"] is None and seconds * 2 <= max_step_time:
            seconds *= 2
            step = _step(session, rate, percentile, slo_ns, seconds)
        if step["passed"] is None:
            step["passed"] = point_verdict(step, slo_ns)
        steps.append(step)
        bracket.record(rate, bool(step["passed"]))
        if bracket.narrow:
            break
        rate = bracket.next_rate
    return CapacityResult(
        percentile=percentile,
        slo_ns=slo_ns,
        concurrency=session.config.concurrency,
        offline_throughput_per_s=throughput,
        capacity_qps=bracket.low if bracket.low > 0 else None,
        steps=steps,
    )
