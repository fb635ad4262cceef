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
4. The rate found is run again, for twice the step time (a machine whose speed changes for
   seconds at a time can pass a step in its fast state): the capacity is a rate that passed
   twice. A failed re-run is a failure at that rate; the search goes on below it (up to
   CONFIRMATIONS re-runs) and the step table shows the re-run with its reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..analysis.capacity import (
    KEEP_UP,
    Bracket,
    CapacityResult,
    GenerationCapacityResult,
    generation_limits,
    generation_point_verdict,
    judge_generation_light_load,
    judge_generation_step,
    judge_light_load,
    judge_step,
    point_verdict,
    step_requests,
)

if TYPE_CHECKING:
    from ..measure.session import Session

__all__ = ["find_capacity", "find_generation_capacity"]

#: How many times an undecided step is run again, each twice as long as the last.
RERUNS = 2
#: How many rates found are run again before the search gives up on confirming one.
CONFIRMATIONS = 5


@dataclass(frozen=True)
class _Probe:
    """What the search runs and judges at one rate: ``step(rate, seconds)`` a judged step;
    ``decide(step)`` an undecided one's verdict on its estimate; ``label`` the SLO's figure in
    words (``"p99"``)."""

    step: Callable[[float, float], dict[str, Any]]
    decide: Callable[[dict[str, Any]], bool]
    label: str


def _judged_step(probe: _Probe, rate: float, limits: tuple[float, float, int]) -> dict[str, Any]:
    """One rate, run long enough to hold ``need`` requests (a Poisson schedule of ``seconds``
    at ``rate`` holds round(rate x seconds) of them), rerun longer while undecided."""
    step_time, max_step_time, need = limits
    seconds = max(step_time, need / rate)
    step = probe.step(rate, seconds)
    for _ in range(RERUNS):
        if step["passed"] is not None or seconds * 2 > max_step_time:
            break
        seconds *= 2
        step = probe.step(rate, seconds)
    if step["passed"] is None:
        step["passed"] = probe.decide(step)
    return step


def _light_load(session: Session, step_time: float, max_step_time: float, need: int) -> Any:
    """The closed loop the light-load check reads: ``step_time`` seconds (as long as a step, so
    that a moment of a busy machine does not decide it alone), and at least ``need`` calls when
    the model is too slow for them in that time (within ``max_step_time``). For a decoder,
    ``need`` whole generations (its samples are decode steps: G - 1 of them each)."""
    light = session.measure(
        scenario="single-stream", qps=None, concurrency=1, max_time=step_time, warmup_time=0.05
    )
    have, per_request = _requests_of(light)
    if have < need:
        light = session.measure(
            scenario="single-stream",
            qps=None,
            concurrency=1,
            iterations=need * per_request,
            max_time=max_step_time,
            warmup_time=0.05,
        )
    return light


def _requests_of(result: Any) -> tuple[int, int]:
    """(requests, samples per request) of a single-stream result: a decoder's whole generations
    and its decode steps per generation, else its calls and 1."""
    g = getattr(result, "generation", None)
    if not g:
        return int(result.samples_ns.size), 1
    return int(g.get("complete_generations") or 0), max(1, int(g["gen_tokens"]) - 1)


def _bisect(
    probe: _Probe,
    bracket: Bracket,
    rate: float,
    limits: tuple[float, float, int],
    steps: list[dict[str, Any]],
    max_steps: int,
) -> str | None:
    """Bisect from ``rate`` until the bracket is narrow or ``max_steps`` steps are in
    ``steps`` (appended to); why no rate can pass, when that is the answer."""
    _, max_step_time, need = limits
    floor = need / max_step_time  # slower rates cannot hold `need` requests within max_step_time
    while len(steps) < max_steps:
        if rate < floor:
            if floor >= bracket.high or any(st["qps"] == floor for st in steps):
                return (
                    f"no rate from {floor:.3g}/s up met the SLO; a slower rate would need a step "
                    f"over {max_step_time:g} s to hold {need} requests"
                )
            rate = floor
        step = _judged_step(probe, rate, limits)
        steps.append(step)
        bracket.record(rate, bool(step["passed"]))
        if step.get("light_load") and not step["passed"] and bracket.low == 0.0:
            return (
                f"not met even at light load: at {rate:.3g}/s the server's {probe.label} was still "
                "above the SLO with too little queueing to explain it (its own floor: service time, "
                "the scheduler's lateness, the machine's stalls)"
            )
        if bracket.narrow:
            return None
        rate = bracket.next_rate
    return None


def _confirmed(probe: _Probe, rate: float, limits: tuple[float, float, int]) -> dict[str, Any]:
    """The rate found, run again for twice the step time (a machine that changes speed for
    seconds at a time may have passed the first step in its fast state), marked ``confirm``."""
    step_time, max_step_time, need = limits
    step = _judged_step(probe, rate, (min(2.0 * step_time, max_step_time), max_step_time, need))
    step["confirm"] = True
    if not step["passed"]:
        step["reason"] = f"the re-run of the rate found failed: {step['reason']}"
    return step


def _search(
    probe: _Probe, throughput: float, limits: tuple[float, float, int], max_steps: int
) -> tuple[list[dict[str, Any]], float | None, str | None]:
    """The bisection, then a re-run of the rate it found (:func:`_confirmed`); a failed re-run
    counts as a failure at that rate and the search goes on below it, up to CONFIRMATIONS
    re-runs. Returns the steps walked, the highest rate that passed (and its re-run), and why
    none did when the steps alone do not say."""
    steps: list[dict[str, Any]] = []
    bracket = Bracket(0.0, 1.3 * throughput)  # high is assumed to fail
    note = _bisect(probe, bracket, 0.9 * throughput, limits, steps, max_steps)
    for attempt in range(CONFIRMATIONS):
        if note is not None or bracket.low <= 0.0:
            return steps, None, note or _unconfirmed(steps)
        found = bracket.low
        step = _confirmed(probe, found, limits)
        steps.append(step)
        if step["passed"]:
            return steps, found, None
        # A failure at that rate now, and above what the re-run served where it fell behind;
        # the highest other pass below that is the new low.
        behind = step["achieved_qps"] < KEEP_UP * step["scheduled_qps"]
        bracket.high = min(found, step["achieved_qps"]) if behind else found
        below = [st["qps"] for st in steps if st["passed"] and st["qps"] < bracket.high]
        bracket.low = max(below, default=0.0)
        if attempt + 1 < CONFIRMATIONS and not bracket.narrow:
            note = _bisect(probe, bracket, bracket.next_rate, limits, steps, len(steps) + max_steps // 2)
    return steps, None, note or _unconfirmed(steps)


def _unconfirmed(steps: list[dict[str, Any]]) -> str | None:
    """Why no capacity, when rates passed but failed their re-runs (None when none failed one)."""
    failed = [st for st in steps if st.get("confirm") and not st["passed"]]
    if not failed:
        return None
    return (
        f"{len(failed)} rate(s) passed and then failed their re-run, and none below held: the "
        "machine's speed varied more than the steps could follow; try a longer --step-time"
    )


def _offline_throughput(session: Session, step_time: float) -> float:
    offline = session.measure(scenario="offline", qps=None, duration=step_time, warmup_time=0.05)
    return float(offline.scenario_stats["throughput_per_s"])


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
        percentile=percentile, slo_ns=slo_ns, concurrency=concurrency, offline_throughput_per_s=None,
        capacity_qps=None, light_load=light_load, min_requests=need,
    )  # fmt: skip
    if not light_load["met"]:
        return found

    def step(rate: float, seconds: float) -> dict[str, Any]:
        r = session.measure(scenario="server", qps=rate, duration=seconds, warmup_time=0.05)
        return judge_step(r, rate, percentile, slo_ns, seconds, need)

    probe = _Probe(step, lambda st: point_verdict(st, slo_ns), f"p{percentile:g}")
    throughput = _offline_throughput(session, step_time)
    steps, capacity, note = _search(probe, throughput, (step_time, max_step_time, need), max_steps)
    return dataclasses.replace(
        found, offline_throughput_per_s=throughput, capacity_qps=capacity, steps=steps, note=note
    )


def find_generation_capacity(
    session: Session,
    slo: Mapping[str, float],
    *,
    step_time: float = 2.0,
    max_step_time: float = 60.0,
    max_steps: int = 14,
    min_requests: int | None = None,
) -> GenerationCapacityResult:
    """Search the highest rate of generation requests (``session.config.concurrency`` streams
    of a decoder's session) whose TTFT and TPOT percentiles stay within ``slo`` (seconds by
    key: ``{"ttft-p99": 0.5, "tpot-p99": 0.05}``; each key names a percentile), as
    :func:`find_capacity` searches a single call's: the light-load check over whole generations
    one at a time, the offline request rate bounding a bisection of server steps, each step
    holding the most requests any limit's percentile needs (``min_requests`` overrides)."""
    limits = generation_limits(slo)
    need = min_requests or max(lim.min_requests for lim in limits)
    concurrency = session.config.concurrency
    light = _light_load(session, step_time, max_step_time, need)
    light_load = judge_generation_light_load(light, limits)
    found = GenerationCapacityResult(
        limits=limits, concurrency=concurrency, offline_throughput_per_s=None, capacity_qps=None,
        light_load=light_load, min_requests=need,
    )  # fmt: skip
    if not light_load["met"]:
        return found

    def step(rate: float, seconds: float) -> dict[str, Any]:
        r = session.measure(scenario="server", qps=rate, duration=seconds, warmup_time=0.05)
        return judge_generation_step(r, rate, limits, seconds, need)

    probe = _Probe(step, generation_point_verdict, ", ".join(lim.key for lim in limits))
    throughput = _offline_throughput(session, step_time)
    steps, capacity, note = _search(probe, throughput, (step_time, max_step_time, need), max_steps)
    return dataclasses.replace(
        found, offline_throughput_per_s=throughput, capacity_qps=capacity, steps=steps, note=note
    )
