"""Capacity decisions: does one step of a capacity search meet the SLO, and where does the
search go next? Results in, decisions out; the search that runs the steps is
:func:`inferspeed.tools.capacity.find_capacity`.

A step (the server scenario at one arrival rate) passes when the server keeps up (achieved >=
KEEP_UP x the rate its schedule offers) and the percentile's 95% confidence interval lies below
the SLO; it fails when the interval lies above it, and is undecided when the interval straddles
the SLO (:func:`judge_step`). The rate bisects between the highest rate that passed and the
lowest that failed until the bracket is narrower than TOLERANCE of the rate
(:class:`Bracket`).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..results.result import Result
from ..stats.summary import quantile_ci

__all__ = ["KEEP_UP", "TOLERANCE", "Bracket", "CapacityResult", "judge_step", "point_verdict"]

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

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": "capacity",
            "slo": {"percentile": self.percentile, "latency_ns": self.slo_ns},
            "concurrency": self.concurrency,
            "offline_throughput_per_s": self.offline_throughput_per_s,
            "capacity_qps": self.capacity_qps,
            "steps": self.steps,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, object]) -> CapacityResult:
        """A capacity document (``to_dict``'s form, as ``inferspeed capacity --json`` writes
        it); KeyError, TypeError or ValueError when it is malformed."""
        data: Any = doc  # JSON: checked by the conversions below
        capacity = data.get("capacity_qps")
        return cls(
            percentile=float(data["slo"]["percentile"]),
            slo_ns=float(data["slo"]["latency_ns"]),
            concurrency=int(data.get("concurrency", 1)),
            offline_throughput_per_s=float(data["offline_throughput_per_s"]),
            capacity_qps=None if capacity is None else float(capacity),
            steps=[dict(step) for step in data.get("steps", [])],
        )


def judge_step(
    result: Result, qps: float, percentile: float, slo_ns: float, seconds: float
) -> dict[str, Any]:
    """One step's record: the rate offered (``qps``) and achieved, the ``percentile`` latency
    with its 95% interval, and ``passed`` (True, False, or None: the interval straddles the
    SLO) for a server-scenario ``result`` of ``seconds``."""
    latency = np.sort(result.samples_ns)
    q = percentile / 100.0
    value = float(np.percentile(latency, percentile))
    lo, hi = quantile_ci(latency, q)
    achieved = float(result.scenario_stats["achieved_qps"])
    # Against the rate this seeded schedule offers, not the nominal one: a short step's Poisson
    # draw can be far from it (measure.scenarios.scheduled_rate).
    scheduled = float(result.scenario_stats.get("scheduled_qps") or qps)
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


def point_verdict(step: dict[str, Any], slo_ns: float) -> bool:
    """An undecided step decided on its point estimate (after the longest step time)."""
    return bool(step["latency_ns"] <= slo_ns and step["achieved_qps"] >= KEEP_UP * step["scheduled_qps"])


@dataclass
class Bracket:
    """The bisection's bracket: ``low`` passed (0 trivially), ``high`` failed or is assumed to."""

    low: float
    high: float

    def record(self, rate: float, passed: bool) -> None:
        if passed:
            self.low = rate
        else:
            self.high = rate

    @property
    def narrow(self) -> bool:
        """Narrower than TOLERANCE of the rate: the search is done."""
        return self.high - self.low <= TOLERANCE * self.high

    @property
    def next_rate(self) -> float:
        return (self.low + self.high) / 2.0


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
