"""Capacity decisions: how many requests a step needs, whether the SLO is met at light load,
does one step of a capacity search meet the SLO, and where does the search go next? Results in,
decisions out; the search that runs the steps is :func:`inferspeed.tools.capacity.find_capacity`.

A step (the server scenario at one arrival rate) holds at least :func:`step_requests` requests.
It passes when the server keeps up (achieved >= KEEP_UP x the rate its schedule offers) and the
percentile's 95% confidence interval lies below the SLO; it fails when it does not keep up or
the interval lies above the SLO, and is undecided when the interval straddles the SLO
(:func:`judge_step`). Every step carries the reason for its verdict. The rate bisects between
the highest rate that passed and the lowest that failed until the bracket is narrower than
TOLERANCE of the rate (:class:`Bracket`).
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import slo_key
from ..errors import ConfigError
from ..results.result import Result
from ..stats.generation import percentile_with_interval, request_times, single_stream_times
from ..stats.summary import min_samples_for_ci
from ..units import format_duration

__all__ = [
    "KEEP_UP",
    "TAIL_EVENTS",
    "TOLERANCE",
    "Bracket",
    "CapacityResult",
    "GenerationCapacityResult",
    "SearchResult",
    "SloLimit",
    "generation_limits",
    "generation_point_verdict",
    "judge_generation_light_load",
    "judge_generation_step",
    "judge_light_load",
    "judge_step",
    "percentile_with_interval",
    "point_verdict",
    "queued_share",
    "step_requests",
    "utilisation",
]

#: A step keeps up when it serves at least this fraction of the offered rate.
KEEP_UP = 0.97
#: The search stops when the bracket is narrower than this fraction of the rate.
TOLERANCE = 0.03
#: Requests a step must expect beyond the SLO's percentile (on the far side of the median).
TAIL_EVENTS = 10


def step_requests(percentile: float) -> int:
    """The fewest requests a step needs to judge the ``percentile`` latency and keeping up.

    The largest of three counts, each a step too short to judge below it:

    - TAIL_EVENTS / (1 - q) (q the quantile, or q itself below the median): about ten
      requests expected beyond the quantile, so that the 95% interval of the quantile rests on
      order statistics inside the tail (the 4th to 17th largest for p99, the number beyond it
      being about Poisson(10)) rather than on the single largest request. p99: 1000; p99.9:
      10,000; p90: 100.
    - The fewest for which the distribution-free 95% interval of the quantile has both bounds
      (:func:`~inferspeed.stats.summary.min_samples_for_ci`; p99: 368). From there on the
      interval also always contains the percentile's estimate.
    - 10 / (1 - KEEP_UP) (334): a step that keeps up achieves about n / (n + rate x L) of the
      scheduled rate (the last request's latency L lengthens the span), so with n at least
      this a last latency of up to ten service times at full load stays within the 3% margin
      that keeping up allows.
    """
    q = percentile / 100.0
    tail = min(q, 1.0 - q)
    return max(
        math.ceil(round(TAIL_EVENTS / tail, 6)),  # rounded: 10 / (1 - 0.999) is 10000.000000000002
        min_samples_for_ci(q),
        math.ceil(round(10.0 / (1.0 - KEEP_UP), 6)),
    )


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """What every capacity search gives: the rate found and every step walked (in the order
    they ran).

    ``light_load``: the check that came first, at one request at a time (its figures and
    whether they met the SLO). ``min_requests``: the fewest requests every step held.
    ``note``: why no rate was found, where the steps do not say it (None otherwise).
    ``offline_throughput_per_s`` is None when the search never ran (not met at light load)."""

    concurrency: int
    offline_throughput_per_s: float | None
    capacity_qps: float | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    light_load: dict[str, Any] | None = None
    min_requests: int | None = None
    note: str | None = None

    @property
    def met_at_light_load(self) -> bool:
        """False when the light-load figures already miss the SLO (no rate can meet it)."""
        return self.light_load is None or bool(self.light_load["met"])

    def _search_dict(self) -> dict[str, object]:
        """The fields every search's document has, after its SLO."""
        return {
            "concurrency": self.concurrency,
            "min_requests": self.min_requests,
            "light_load": self.light_load,
            "offline_throughput_per_s": self.offline_throughput_per_s,
            "capacity_qps": self.capacity_qps,
            "note": self.note,
            "steps": self.steps,
        }


@dataclass(frozen=True, kw_only=True)
class CapacityResult(SearchResult):
    """A single call's capacity (:class:`SearchResult`): the SLO a latency ``percentile``
    within ``slo_ns``; ``light_load`` the single-stream check (its percentile, interval and
    calls)."""

    percentile: float
    slo_ns: float

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": "capacity",
            "slo": {"percentile": self.percentile, "latency_ns": self.slo_ns},
            **self._search_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, object]) -> CapacityResult:
        """A capacity document (``to_dict``'s form, as ``inferspeed capacity --json`` writes
        it; older documents without the light-load check read too); KeyError, TypeError or
        ValueError when it is malformed."""
        data: Any = doc  # JSON: checked by the conversions below
        capacity = data.get("capacity_qps")
        offline = data.get("offline_throughput_per_s")
        light = data.get("light_load")
        least = data.get("min_requests")
        note = data.get("note")
        return cls(
            percentile=float(data["slo"]["percentile"]),
            slo_ns=float(data["slo"]["latency_ns"]),
            concurrency=int(data.get("concurrency", 1)),
            offline_throughput_per_s=None if offline is None else float(offline),
            capacity_qps=None if capacity is None else float(capacity),
            steps=[dict(step) for step in data.get("steps", [])],
            light_load=None if light is None else dict(light),
            min_requests=None if least is None else int(least),
            note=None if note is None else str(note),
        )


def _slo_text(label: str, value: float, lo: float | None, hi: float | None, slo_ns: float) -> str:
    """ "p99 6.2 ms above the SLO 5 ms (95% CI 5.9 ms–6.6 ms)": a verdict's figures."""
    ci = f"{format_duration(lo) if lo is not None else '?'}–{format_duration(hi) if hi is not None else '?'}"
    side = "within" if value <= slo_ns else "above"
    return f"{label} {format_duration(value)} {side} the SLO {format_duration(slo_ns)} (95% CI {ci})"


def judge_light_load(result: Result, percentile: float, slo_ns: float) -> dict[str, Any]:
    """The single-stream check: the ``percentile`` of a closed-loop ``result`` (one call at a
    time, no queue) against the SLO. Server latency is never below it (each request is at least
    one call, plus any wait), so when its estimate is above the SLO no arrival rate meets it."""
    value, lo, hi = percentile_with_interval(result.samples_ns, percentile)
    return {
        "latency_ns": value,
        "ci95_ns": [lo, hi],
        "calls": int(result.samples_ns.size),
        "met": value <= slo_ns,
    }


def judge_step(
    result: Result, qps: float, percentile: float, slo_ns: float, seconds: float, min_requests: int = 0
) -> dict[str, Any]:
    """One step's record: the rate offered (``qps``), scheduled and achieved, the requests
    served, the ``percentile`` latency with its 95% interval, ``passed`` (True, False, or None:
    the interval straddles the SLO) and ``reason``, the figures behind the verdict, for a
    server-scenario ``result`` of ``seconds``. Fewer than ``min_requests`` requests fail the
    step: too few to judge, it cannot count as meeting the SLO."""
    label = f"p{percentile:g}"
    value, lo, hi = percentile_with_interval(result.samples_ns, percentile)
    achieved = float(result.scenario_stats["achieved_qps"])
    # Against the rate the schedule offers (measure.scenarios.scheduled_rate: the nominal one,
    # to the nanosecond's rounding).
    scheduled = float(result.scenario_stats.get("scheduled_qps") or qps)
    requests = int(result.samples_ns.size)
    figures = _slo_text(label, value, lo, hi, slo_ns)
    failures = []
    if requests < min_requests:
        failures.append(f"too few requests to judge: {requests} of the {min_requests} a {label} needs")
    if achieved < KEEP_UP * scheduled:
        failures.append(
            f"could not keep up: served {achieved:.1f}/s of the {scheduled:.1f}/s scheduled "
            f"({achieved / scheduled:.1%}, under {KEEP_UP:.0%}): requests queue up and latency grows "
            "with the length of the run"
        )
    queued = queued_share(result)
    busy = utilisation(result)
    shares = [x for x in (queued, busy) if x is not None]
    light = False
    if lo is not None and lo > slo_ns:
        failures.append(figures)
        # Fewer requests can have queued behind a call than lie beyond the percentile: its tail
        # is the server's own floor (the scheduler's lateness, the machine's stalls), which a
        # lower rate does not take away.
        tail = 1.0 - percentile / 100.0
        light = bool(shares) and min(shares) < tail and achieved >= KEEP_UP * scheduled
        if light:
            failures.append(
                f"at light load: {_light_text(queued, busy)}, under the {tail:.2%} of requests beyond "
                f"the {label}, so queueing does not explain it and a lower rate would not meet the SLO"
            )
    verdict: bool | None
    if failures:
        verdict, reason = False, "; ".join(failures)
    elif hi is not None and hi <= slo_ns:
        verdict, reason = True, f"kept up; {figures}"
    else:
        verdict, reason = None, f"undecided: the interval straddles the SLO: {figures}"
    return {
        "qps": qps,
        "scheduled_qps": scheduled,
        "achieved_qps": achieved,
        "requests": requests,
        "duration_s": seconds,
        "latency_ns": value,
        "ci95_ns": [lo, hi],
        "queued_share": queued,
        "utilisation": busy,
        "light_load": light,
        "passed": verdict,
        "reason": reason,
    }


def _light_text(queued: float | None, busy: float | None) -> str:
    """The smaller of the two shares that bound queueing, in words."""
    if busy is not None and (queued is None or busy <= queued):
        return f"the workers were busy {busy:.2%} of the time"
    return f"{queued:.2%} of requests waited for a busy worker"


def utilisation(result: Result) -> float | None:
    """The share of time a server run's workers spent in calls (achieved rate x mean service
    time / workers): by Poisson arrivals seeing time averages, the share of requests that
    arrive while the worker serves a call; None when the run does not say."""
    figures = result.scenario_stats
    service = figures.get("service_stats")
    if not isinstance(service, Mapping) or not service.get("mean_ns"):
        return None
    workers = int(figures.get("concurrency") or 1)
    return float(figures["achieved_qps"]) * float(service["mean_ns"]) / 1e9 / workers


def queued_share(result: Result, requests: int | None = None) -> float | None:
    """The share of a server run's ``requests`` (its samples unless given) that waited for a
    busy worker (the rest found one idle: the scheduler's lateness counts those); None when
    the run does not say."""
    figures = result.scenario_stats
    requests = int(result.samples_ns.size) if requests is None else requests
    if "scheduler_lateness_stats" not in figures or requests == 0:
        return None
    free = figures["scheduler_lateness_stats"]  # None when no request found a worker idle
    idle = int(free["count"]) if free else 0
    return max(0.0, 1.0 - idle / requests)


def point_verdict(step: dict[str, Any], slo_ns: float) -> bool:
    """An undecided step decided on its point estimate (after the longest step time); its
    ``reason`` says so."""
    passed = bool(step["latency_ns"] <= slo_ns and step["achieved_qps"] >= KEEP_UP * step["scheduled_qps"])
    figures = str(step.get("reason", "")).removeprefix("undecided: the interval straddles the SLO: ")
    step["reason"] = f"decided on the estimate (still straddling at the longest step): {figures}"
    return passed


@dataclass
class Bracket:
    """The bisection's bracket: ``low`` passed (0 trivially), ``high`` failed or is assumed to."""

    low: float
    high: float

    def record(self, rate: float, passed: bool) -> None:
        if passed:
            self.low = max(self.low, rate)
        else:
            self.high = min(self.high, rate)

    @property
    def narrow(self) -> bool:
        """Narrower than TOLERANCE of the rate: the search is done."""
        return self.high - self.low <= TOLERANCE * self.high

    @property
    def next_rate(self) -> float:
        return (self.low + self.high) / 2.0


@dataclass(frozen=True)
class SloLimit:
    """One limit of a generation's capacity: a percentile of each request's ``figure`` (ttft
    or tpot) within ``limit_ns``; ``key`` as given (``"ttft-p99"``)."""

    key: str
    figure: str
    percentile: float
    limit_ns: float

    @property
    def min_requests(self) -> int:
        return step_requests(self.percentile)


def generation_limits(slo: Mapping[str, float]) -> list[SloLimit]:
    """The limits of ``slo`` (seconds by key, as Config.slo): each must name a percentile, the
    capacity's question being about the run's tail. ConfigError otherwise."""
    limits = []
    for key, seconds in slo.items():
        figure, pct = slo_key(key)
        if pct is None:
            raise ConfigError(
                f"capacity judges a percentile of the requests: write {figure}-p99={seconds:g}s "
                f"(or another pNN), not {key}"
            )
        limits.append(SloLimit(key, figure, pct, seconds * 1e9))
    if not limits:
        raise ConfigError("capacity needs at least one limit (e.g. ttft-p99=500ms,tpot-p99=50ms)")
    return limits


def _limit_figures(times: Mapping[str, np.ndarray], limits: list[SloLimit]) -> dict[str, dict[str, Any]]:
    """Each limit's percentile of ``times`` with its 95% interval (None where no request)."""
    out: dict[str, dict[str, Any]] = {}
    for lim in limits:
        x = times[lim.figure]
        value, lo, hi = percentile_with_interval(x, lim.percentile) if x.size else (math.inf, None, None)
        out[lim.key] = {"value_ns": value, "ci95_ns": [lo, hi], "limit_ns": lim.limit_ns}
    return out


def judge_generation_light_load(result: Result, limits: list[SloLimit]) -> dict[str, Any]:
    """The single-stream check of a generation capacity: each limit's percentile over whole
    generations one at a time (:func:`~inferspeed.stats.generation.single_stream_times`). A
    request under load is never faster, so a limit its estimate misses no rate meets."""
    times = single_stream_times(result.generation or {})
    figures = _limit_figures(times, limits)
    return {
        "limits": figures,
        "generations": int(times["ttft"].size),
        "met": all(f["value_ns"] <= f["limit_ns"] for f in figures.values()),
    }


def _limit_text(key: str, f: Mapping[str, Any]) -> str:
    lo, hi = f["ci95_ns"]
    return _slo_text(key, f["value_ns"], lo, hi, f["limit_ns"])


def judge_generation_step(
    result: Result, qps: float, limits: list[SloLimit], seconds: float, min_requests: int = 0
) -> dict[str, Any]:
    """One step of a generation capacity (a decoder's server ``result`` of ``seconds`` at
    ``qps``): each limit's percentile over the completed requests (TTFT from the scheduled
    arrival), judged as :func:`judge_step` judges a latency: it passes when the server kept up
    and every interval lies within its limit, fails when it did not keep up, held fewer than
    ``min_requests`` requests, or an interval lies above its limit (each reason said)."""
    g = result.generation or {}
    each = g.get("request_gen_tokens")
    times = request_times(
        np.asarray(g["arrival_ns"]),
        np.asarray(g["start_ns"]),
        np.asarray(g["token_ns"]),
        None if each is None else np.asarray(each),
    )
    requests = int(times["ttft"].size)
    figures = _limit_figures(times, limits)
    achieved = float(result.scenario_stats["achieved_qps"])
    scheduled = float(result.scenario_stats.get("scheduled_qps") or qps)
    failures = []
    if requests < min_requests:
        failures.append(f"too few requests to judge: {requests} of the {min_requests} the limits need")
    keeps_up = achieved >= KEEP_UP * scheduled
    if not keeps_up:
        failures.append(
            f"could not keep up: served {achieved:.1f}/s of the {scheduled:.1f}/s scheduled "
            f"({achieved / scheduled:.1%}, under {KEEP_UP:.0%}): requests queue up and TTFT grows "
            "with the length of the run"
        )
    above = [
        lim for lim in limits if (lo := figures[lim.key]["ci95_ns"][0]) is not None and lo > lim.limit_ns
    ]
    failures += [_limit_text(lim.key, figures[lim.key]) for lim in above]
    queued, busy = queued_share(result, requests), utilisation(result)
    shares = [x for x in (queued, busy) if x is not None]
    tail = min((1.0 - lim.percentile / 100.0 for lim in above), default=0.0)
    light = bool(above) and bool(shares) and min(shares) < tail and keeps_up
    if light:
        failures.append(
            f"at light load: {_light_text(queued, busy)}, under the {tail:.2%} of requests beyond the "
            "percentile, so queueing does not explain it and a lower rate would not meet the SLO"
        )
    within = all(f["ci95_ns"][1] is not None and f["ci95_ns"][1] <= f["limit_ns"] for f in figures.values())
    text = "; ".join(_limit_text(k, f) for k, f in figures.items())
    verdict: bool | None
    if failures:
        verdict, reason = False, "; ".join(failures)
    elif within:
        verdict, reason = True, f"kept up; {text}"
    else:
        verdict, reason = None, f"undecided: an interval straddles its limit: {text}"
    return {
        "qps": qps,
        "scheduled_qps": scheduled,
        "achieved_qps": achieved,
        "requests": requests,
        "duration_s": seconds,
        "limits": figures,
        "queued_share": queued,
        "utilisation": busy,
        "light_load": light,
        "passed": verdict,
        "reason": reason,
    }


def generation_point_verdict(step: dict[str, Any]) -> bool:
    """An undecided generation step decided on its estimates (after the longest step time)."""
    passed = all(f["value_ns"] <= f["limit_ns"] for f in step["limits"].values()) and bool(
        step["achieved_qps"] >= KEEP_UP * step["scheduled_qps"]
    )
    figures = str(step.get("reason", "")).removeprefix("undecided: an interval straddles its limit: ")
    step["reason"] = f"decided on the estimates (still straddling at the longest step): {figures}"
    return passed


@dataclass(frozen=True, kw_only=True)
class GenerationCapacityResult(SearchResult):
    """The highest request rate whose limits (TTFT and TPOT percentiles) a decoder's server
    met (:class:`SearchResult`): ``limits`` for the SLO, ``light_load`` a check over whole
    generations one at a time."""

    limits: list[SloLimit]

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": "capacity",
            "metric": "generation",
            "slo": {lim.key: {"limit_ns": lim.limit_ns} for lim in self.limits},
            **self._search_dict(),
        }


#: Moved to the tools layer (it runs measurements); the old name works for one release.
_MOVED = {"find_capacity": "inferspeed.tools.capacity"}


def __getattr__(name: str) -> Any:
    where = _MOVED.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"inferspeed.analysis.capacity.{name} is deprecated: use {where}.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    # A deprecation shim, by name at run time: the analysis layer imports nothing above it.
    return getattr(importlib.import_module(where), name)
