"""The machine's history in a measurement: read once per process before a closed loop (the
machine's switching time), the median's interval for another run made from it and the run's
own variation in time, and the run added to it afterwards: once per top-level measurement.

A measurement made of parts (interleaved rounds, a gate's pilot, a worker process's share)
runs them inside :func:`parts_of_one_run`: the parts are not added; the caller adds the pooled
result once (:func:`remember` with its ``kind``).

See :mod:`inferspeed.facts.history` (the file, the machine's key, ``INFERSPEED_HISTORY=0``) and
:mod:`inferspeed.stats.timeseries` (the interval).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..facts import history as stored
from ..stats.timeseries import Between, between_sessions, run_variance, session_interval

__all__ = ["MachineHistory", "machine_history", "over_time", "parts_of_one_run", "remember"]

_PARTS: contextvars.ContextVar[bool] = contextvars.ContextVar("inferspeed_parts_of_one_run", default=False)


@contextlib.contextmanager
def parts_of_one_run() -> Iterator[None]:
    """Measurements made inside are parts of one run: none of them is added to the history."""
    token = _PARTS.set(True)
    try:
        yield
    finally:
        _PARTS.reset(token)


@dataclasses.dataclass(frozen=True)
class MachineHistory:
    """This machine's key (None: history off) and its entries (read once per process)."""

    machine: str | None = None
    entries: Sequence[Mapping[str, Any]] = ()

    @functools.cached_property
    def between(self) -> Between:
        """What the history says of any measurement on this machine (its switching time)."""
        return between_sessions(self.entries, now=time.time())

    def of(self, key: str | None) -> Between:
        """What the history says of runs of ``key`` (None: the machine's runs as a prior)."""
        return between_sessions(self.entries, key, now=time.time())


#: The last history made, with the entries it was made of: the same entries (the file did not
#: change) give the same object, its figures made once.
_LAST: list[MachineHistory] = []


def machine_history() -> MachineHistory:
    """The machine's history as it stands now; empty when it is off or unreadable."""
    if not stored.enabled():
        return MachineHistory()
    machine = stored.machine_key()
    entries = stored.load_runs(machine)
    if _LAST and _LAST[0].machine == machine and _LAST[0].entries is entries:
        return _LAST[0]
    _LAST[:] = [MachineHistory(machine, entries)]
    return _LAST[0]


def _key(result: Any, kind: str) -> str | None:
    """The history key of ``result``'s measurement; None for a callable (no model file)."""
    model: Mapping[str, Any] = result.model
    if not model.get("sha256"):
        return None
    runtime = result.environment.get("onnxruntime", {}).get("version")
    threads = (result.session or {}).get("intra_op_threads")
    return stored.settings_key(str(model["sha256"]), result.config, runtime, threads=threads, kind=kind)


def over_time(result: Any, known: MachineHistory) -> Any:
    """``result`` with the median's interval for another run on this machine (the within-run
    interval kept as ``ci95_median_within_ns``) and, in its monitor, how it was made."""
    stats = result.stats
    between = known.of(_key(result, "run"))
    record = session_interval(result.samples_ns, stats.median_ns, stats.ci95_median_ns, between)
    interval = record.pop("interval_ns")
    record["history_switching_time_s"] = between.switching_time_s
    changed = dataclasses.replace(stats, ci95_median_ns=interval, ci95_median_within_ns=stats.ci95_median_ns)
    return dataclasses.replace(result, stats=changed, monitor={**result.monitor, "over_time": record})


def remember(known: MachineHistory, result: Any, kind: str = "run") -> bool:
    """Add a finished measurement of a model to the machine's history, once: nothing for a
    callable, a partial result, a part of a run (:func:`parts_of_one_run`), or with the history
    off. ``kind``: "run" (one closed loop), "interleaved" (pooled rounds), "processes"."""
    key = _key(result, kind)
    if known.machine is None or _PARTS.get() or result.interrupted or key is None:
        return False
    s = result.stats
    over = (result.monitor or {}).get("over_time") or {}
    if "log_var_run" not in over:
        over = run_variance(result.samples_ns, s.median_ns, s.ci95_median_within_ns or s.ci95_median_ns)
        over = {**over, "log_var_run": over["v"]}
    readings = (result.monitor or {}).get("readings_ns") or []
    return stored.append(
        known.machine,
        {
            "time": round(time.time(), 3),
            "key": key,
            "kind": kind,
            "model_sha256": result.model["sha256"],
            "median_ns": s.median_ns,
            "log_var_run": over["log_var_run"],
            "samples": s.count,
            "span_s": over["span_s"],
            "switching_time_s": over.get("switching_time_s"),
            "sd_windows": over.get("sd_windows"),
            "probe_ns": float(np.median(readings)) if readings else None,
        },
    )
