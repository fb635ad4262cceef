"""The machine's history in a measurement: read before a closed loop (the between-session
variance and switching time of this machine), the median's interval for another run made from
it and the run's own variation in time, and the run added to it afterwards.

See :mod:`inferspeed.facts.history` (the file, the machine's key, ``INFERSPEED_HISTORY=0``) and
:mod:`inferspeed.stats.timeseries` (the interval).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..facts import history as stored
from ..stats.summary import Stats
from ..stats.timeseries import Between, between_sessions, session_interval

__all__ = ["MachineHistory", "machine_history", "over_time", "remember"]


@dataclasses.dataclass(frozen=True)
class MachineHistory:
    """This machine's key (None: history off) and what its history says."""

    machine: str | None = None
    between: Between = dataclasses.field(default_factory=Between)


def machine_history() -> MachineHistory:
    """The machine's history as it stands now; empty when it is off or unreadable."""
    if not stored.enabled():
        return MachineHistory()
    machine = stored.machine_key()
    return MachineHistory(machine, between_sessions(stored.load_runs(machine)))


def over_time(stats: Stats, samples_ns: np.ndarray, known: MachineHistory) -> tuple[Stats, dict[str, Any]]:
    """``stats`` with the median's interval for another run on this machine (the within-run
    interval kept as ``ci95_median_within_ns``), and the record of how it was made."""
    record = session_interval(samples_ns, stats.median_ns, stats.ci95_median_ns, known.between)
    interval = record.pop("interval_ns")
    record["history_switching_time_s"] = known.between.switching_time_s
    changed = dataclasses.replace(stats, ci95_median_ns=interval, ci95_median_within_ns=stats.ci95_median_ns)
    return changed, record


def _log_se(median: float, interval: Any) -> float | None:
    lo, hi = interval
    if lo is None or hi is None or lo <= 0 or median <= 0:
        return None
    return (math.log(hi) - math.log(lo)) / (2 * 1.96)


def remember(known: MachineHistory, result: Any) -> None:
    """Add a finished closed-loop run of a model to the machine's history (nothing for a
    callable, a partial result, or with the history off)."""
    model: Mapping[str, Any] = result.model
    monitor: Mapping[str, Any] | None = result.monitor
    if known.machine is None or result.interrupted or monitor is None or not model.get("sha256"):
        return
    s: Stats = result.stats
    runtime = result.environment.get("onnxruntime", {}).get("version")
    readings = monitor.get("readings_ns") or []
    span = monitor.get("over_time", {})
    stored.append(
        known.machine,
        {
            "time": round(time.time(), 3),
            "key": stored.settings_key(str(model["sha256"]), result.config, runtime),
            "model_sha256": model["sha256"],
            "median_ns": s.median_ns,
            "log_se_within": _log_se(s.median_ns, s.ci95_median_within_ns or s.ci95_median_ns),
            "samples": s.count,
            "span_s": span.get("span_s"),
            "switching_time_s": span.get("switching_time_s"),
            "probe_ns": float(np.median(readings)) if readings else None,
        },
    )
