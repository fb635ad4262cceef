"""``inferspeed capacity``: the highest arrival rate whose latency percentile meets an SLO.

1. Light load: a closed loop (one call at a time, no queue) of a step's length and at least
   the step's minimum number of calls. Server latency is never below it, so when its
   percentile is above the SLO no rate meets it: the search says so and stops there
   (:func:`inferspeed.analysis.capacity.judge_light_load`).
2. The offline throughput of the same number of workers bounds the search.
3. A bisection over arrival rates runs the server scenario at each rate for at least
   ``step_time`` seconds and at least :func:`~inferspeed.analysis.capacity.step_requests`
   requests (the step is lengthened to hold them). Each step is judged by
   :func:`~inferspeed.analysis.capacity.judge_step`; an undecided step is run again for twice as
   long (twice at most, up to ``max_step_time``) and then decided on the point estimate. A rate
   whose step would need more than ``max_step_time`` to hold the minimum is never tried: the
   search stops above it and says so. Nor does it go below a rate that missed the SLO while
   fewer of its requests queued than lie beyond the percentile: the server's own floor
   (service time and scheduler lateness) misses it there, and a lower rate cannot help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..analysis.capacity import (
    Bracket,
    CapacityResult,
    judge_light_load,
    judge_step,
    point_verdict,
    step_requests,
)

if TYPE_CHECKING:
    from ..measure.session import Session

__all__ = ["find_capacity"]

#: How many times an undecided step is run again, each twice as long as the last.
RERUNS = 2


def _step(
    session: Session, qps: float, percentile: float, slo_ns: float, seconds: float, need: int
) -> dict[str, Any]:
    r = session.measure(scenario="server", qps=qps, duration=seconds, warmup_time=0.05)
    return judge_step(r, qps, percentile, slo_ns, seconds, need)


def _judged_step(
    session: Session, rate: float, percentile: float, slo_ns: float, limits: tuple[float, float, int]
) -> dict[str, Any]:
    """One rate, run long enough to hold ``need`` requests (a Poisson schedule of ``seconds``
    at ``rate`` holds round(rate x seconds) of them), rerun longer while undecided."""
    step_time, max_step_time, need = limits
    seconds = max(step_time, need / rate)
    step = _step(session, rate, percentile, slo_ns, seconds, need)
    for _ in range(RERUNS):
        if step["passed"] is not None or seconds * 2 > max_step_time:
            break
        seconds *= 2
        step = _step(session, rate, percentile, slo_ns, seconds, need)
    if step["passed"] is None:
        step["passed"] = point_verdict(step, slo_ns)
    return step


def _light_load(session: Session, step_time: float, max_step_time: float, need: int) -> Any:
    """The closed loop the light-load check reads: ``step_time`` seconds (as long as a step, so
    that a moment of a busy machine does not decide it alone), and at least ``need`` calls when
    the model is too slow for them in that time (within ``max_step_time``)."""
    light = session.measure(
        scenario="single-stream", qps=None, concurrency=1, max_time=step_time, warmup_time=0.05
    )
    if light.samples_ns.size < need:
        light = session.measure(
            scenario="single-stream",
            qps=None,
            concurrency=1,
            iterations=need,
            max_time=max_step_time,
            warmup_time=0.05,
        )
    return light


def _search(
    session: Session,
    percentile: float,
    slo_ns: float,
    throughput: float,
    limits: tuple[float, float, int],
    max_steps: int,
) -> tuple[list[dict[str, Any]], float | None, str | None]:
    """The bisection: the steps walked, the highest rate that passed, and why none did when the
    steps alone do not say (the slowest rate that can hold the minimum failed)."""
    _, max_step_time, need = limits
    floor = need / max_step_time  # slower rates cannot hold `need` requests within max_step_time
    steps: list[dict[str, Any]] = []
    bracket = Bracket(0.0, 1.3 * throughput)  # high is assumed to fail
    rate = 0.9 * throughput
    note = None
    for _ in range(max_steps):
        if rate < floor:
            if floor >= bracket.high or any(st["qps"] == floor for st in steps):
                note = (
                    f"no rate from {floor:.3g}/s up met the SLO; a slower rate would need a step "
                    f"over {max_step_time:g} s to hold {need} requests"
                )
                break
            rate = floor
        step = _judged_step(session, rate, percentile, slo_ns, limits)
        steps.append(step)
        bracket.record(rate, bool(step["passed"]))
        if step.get("light_load") and not step["passed"] and bracket.low == 0.0:
            note = (
                f"not met even at light load: at {rate:.3g}/s the server's p{percentile:g} was still "
                "above the SLO with too little queueing to explain it (its own floor: service time, "
                "the scheduler's lateness, the machine's stalls)"
            )
            break
        if bracket.narrow:
            break
        rate = bracket.next_rate
    return steps, (bracket.low if bracket.low > 0 else None), note


def find_capacity(
    session: Session,
    percentile: float,
    slo_ns: float,
    *,
    step_time: float = 2.0,
    max_step_time: float = 60.0,
    max_steps: int = 14,
    min_requests: int | None = None,
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
        Shortest time the server scenario runs at each rate (and the offline run that bounds it).
    max_step_time : float
        Longest a step may run: to hold the minimum requests, or rerun while undecided.
    max_steps : int
        Most rates tried.
    min_requests : int or None
        Fewest requests per step (and calls at light load); None: chosen from the percentile
        (:func:`~inferspeed.analysis.capacity.step_requests`).
    """
    need = min_requests or step_requests(percentile)
    concurrency = session.config.concurrency
    light = _light_load(session, step_time, max_step_time, need)
    light_load = judge_light_load(light, percentile, slo_ns)
    found = CapacityResult(
        percentile, slo_ns, concurrency, None, None, light_load=light_load, min_requests=need
    )
    if not light_load["met"]:
        return found
    offline = session.measure(scenario="offline", qps=None, duration=step_time, warmup_time=0.05)
    throughput = float(offline.scenario_stats["throughput_per_s"])
    steps, capacity, note = _search(
        session, percentile, slo_ns, throughput, (step_time, max_step_time, need), max_steps
    )
    return CapacityResult(
        percentile, slo_ns, concurrency, throughput, capacity, steps, light_load, need, note
    )
