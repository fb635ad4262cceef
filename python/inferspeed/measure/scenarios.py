"""Load scenarios beyond single stream: server (scheduled arrivals) and offline (throughput).

Server: request arrival times are computed ahead (seeded Poisson or constant spacing at
``qps``); ``concurrency`` C++ worker threads share the session, each with its own bound
inputs and outputs; the first free worker takes the oldest waiting request. Latency is
measured from each request's **scheduled** arrival to its completion, so a stall counts
against every request it delays (no coordinated omission); queueing delay (start - arrival)
and service time (end - start) are reported apart, and so is the scheduler's own lateness
(start - arrival for requests that found a worker idle and waiting).

Offline: ``concurrency`` workers call the model back to back for the duration; throughput in
inferences/s and samples/s (the first input's first dimension is the batch).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _core
from ..config import CHUNK_TIME, Config
from ..stats.diagnostics import Diagnostic
from ..stats.summary import summarize
from .loop import Timed

__all__ = [
    "arrival_offsets",
    "deadline_stats",
    "run_offline",
    "run_server",
    "scenario_warnings",
    "scheduled_rate",
]

#: Achieved below this fraction of the offered rate means the server could not keep up.
OVERLOAD_RATIO = 0.95


def arrival_offsets(qps: float, duration: float, arrival: str, seed: int) -> np.ndarray:
    """Arrival times (ns after the start) of every request in ``duration`` seconds at ``qps``:
    ``qps x duration`` requests (at least one), the first at the start and the last at
    ``(count - 1) / qps``. Constant spacing puts the rest evenly between; Poisson puts them where
    a Poisson process with that many arrivals in that span does (seeded exponential gaps,
    scaled to the span), so every draw offers the nominal rate. An unscaled draw of 334
    requests (seed 0) offered 0.88 of it, and a capacity search then reported the nominal rate
    for what a slower schedule had passed."""
    count = max(1, round(qps * duration))
    if arrival == "constant" or count < 3:
        times = np.arange(count, dtype=np.float64) / qps
    else:
        ends = np.cumsum(np.random.default_rng(seed).exponential(1.0, size=count - 1))
        times = np.concatenate(([0.0], ends * ((count - 1) / qps / ends[-1])))
    return np.round(times * 1e9).astype(np.int64)


def scheduled_rate(arrivals_ns: np.ndarray, offered: float) -> float:
    """The rate a schedule of arrivals offers: its gaps per second over the span from the first
    arrival to the last (``offered`` for a schedule of :func:`arrival_offsets`, to the
    nanosecond's rounding; ``offered`` itself for fewer than two arrivals)."""
    if arrivals_ns.size < 2 or arrivals_ns[-1] <= arrivals_ns[0]:
        return offered
    return float(arrivals_ns.size - 1) / (float(arrivals_ns[-1] - arrivals_ns[0]) / 1e9)


def deadline_stats(latencies_ns: np.ndarray, deadline: float | None) -> dict[str, Any]:
    """Fraction of requests over ``deadline`` (seconds) and the longest run of consecutive
    misses, in the order the requests were issued."""
    if deadline is None or latencies_ns.size == 0:
        return {}
    miss = latencies_ns > deadline * 1e9
    longest = run = 0
    for m in miss:  # runs of misses: simple and fast enough for millions of bools
        run = run + 1 if m else 0
        longest = max(longest, run)
    return {
        "deadline_ns": int(deadline * 1e9),
        "deadline_misses": int(miss.sum()),
        "deadline_miss_rate": float(miss.mean()),
        "longest_miss_run": int(longest),
    }


def _mode(config: Config) -> _core.CallMode:
    return _core.CallMode.binding if config.mode == "binding" else _core.CallMode.run


def oversubscription(
    config: Config, physical_cores: int | None, logical_cores: int | None
) -> Diagnostic | None:
    """Intra-op threads x workers beyond the machine's cores: a warning, never silent."""
    cores = logical_cores or os.cpu_count() or 1
    threads = config.threads or physical_cores or cores  # ORT's default: one per physical core
    if threads * config.concurrency <= cores:
        return None
    return Diagnostic(
        "oversubscribed",
        f"{config.concurrency} workers x {threads} intra-op threads = {threads * config.concurrency} "
        f"threads on {cores} logical cores: they take turns and latency includes waiting for a core. "
        f"Use --threads {max(1, cores // config.concurrency)} or fewer workers.",
        {"workers": config.concurrency, "intra_op_threads": threads, "logical_cores": cores},
    )


def run_server(core: _core.Session, batch: int, config: Config) -> Timed:
    """The timed part of a server run: latencies, service times and the scenario's figures."""
    assert config.qps is not None
    duration = config.scenario_duration
    arrivals = arrival_offsets(config.qps, duration, config.arrival, config.seed)
    # Idle workers sleep until scheduler_spin before an arrival, then spin: on a VM the kernel
    # wakes a sleeping thread up to milliseconds late; a spinning one is on time (and keeps its
    # core busy, which is why it is bounded).
    spin_ns = int(config.scheduler_spin * 1e9)
    r = _core.run_server(
        core, _mode(config), arrivals.tolist(), config.concurrency, spin_ns, int(CHUNK_TIME * 1e9)
    )
    start, end, waited = r["start_ns"], r["end_ns"], r["waited"].astype(bool)
    done = end >= 0
    latency = (end - arrivals)[done]
    queue = (start - arrivals)[done]
    service = (end - start)[done]
    lateness = (start - arrivals)[done & waited]
    span_s = float(end[done].max()) / 1e9 if done.any() else 0.0
    achieved = float(done.sum()) / span_s if span_s > 0 else 0.0
    figures: dict[str, Any] = {
        "offered_qps": float(config.qps),
        "scheduled_qps": scheduled_rate(arrivals, float(config.qps)),
        "achieved_qps": achieved,
        "arrival": config.arrival,
        "duration_s": duration,
        "concurrency": config.concurrency,
        "requests": int(arrivals.size),
        "completed": int(done.sum()),
        "queue_stats": summarize(queue).to_dict() if queue.size else None,
        "service_stats": summarize(service).to_dict() if service.size else None,
        "scheduler_lateness_stats": summarize(lateness).to_dict() if lateness.size else None,
        "throughput_per_s": achieved,
        "samples_per_s": achieved * batch,
    }
    return Timed(latency, bool(r["interrupted"]), service_ns=service, figures=figures)


def run_offline(core: _core.Session, batch: int, config: Config, single_call_ns: float | None) -> Timed:
    """The timed part of an offline run: latencies and the scenario's figures (no queue: the
    latencies are the service times). ``single_call_ns`` (a warm-up call's) sizes the buffers."""
    duration = config.scenario_duration
    expected = int(duration * 1e9 / single_call_ns * 1.2) + 1024 if single_call_ns else 0
    r = _core.run_offline(
        core, _mode(config), int(duration * 1e9), config.concurrency, expected, int(CHUNK_TIME * 1e9)
    )
    starts: list[np.ndarray] = r["start_ns"]
    ends: list[np.ndarray] = r["end_ns"]
    per_worker = []
    for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
        lat = e - s
        per_worker.append(
            {
                "worker": k,
                "count": int(lat.size),
                "median_ns": float(np.median(lat)) if lat.size else None,
                "throughput_per_s": lat.size / (float(e[-1]) / 1e9) if lat.size and e[-1] > 0 else 0.0,
            }
        )
    all_starts = np.concatenate(starts)
    order = np.argsort(all_starts, kind="stable")
    latency = np.concatenate([e - s for s, e in zip(starts, ends, strict=True)])[order]
    last_end = max((float(e[-1]) for e in ends if e.size), default=0.0) / 1e9
    throughput = latency.size / last_end if last_end > 0 else 0.0
    figures: dict[str, Any] = {
        "duration_s": duration,
        "concurrency": config.concurrency,
        "completed": int(latency.size),
        "throughput_per_s": throughput,
        "samples_per_s": throughput * batch,
        "per_worker": per_worker,
    }
    return Timed(latency, bool(r["interrupted"]), figures=figures)


def overload(figures: Mapping[str, Any]) -> Diagnostic | None:
    """The server could not keep up with the offered rate."""
    offered = figures.get("scheduled_qps") or figures.get("offered_qps")
    achieved = figures.get("achieved_qps")
    if not offered or achieved is None or achieved >= OVERLOAD_RATIO * offered:
        return None
    return Diagnostic(
        "overloaded",
        f"the model served {achieved:.1f} requests/s of the {offered:.1f} offered: requests queued up, "
        "so latency grows with the length of the run. Lower --qps, add workers (--concurrency) or "
        "find the highest rate that meets a latency target with `inferspeed capacity`.",
        {"offered_qps": offered, "achieved_qps": achieved},
    )


def scenario_warnings(config: Config, figures: Mapping[str, Any], cpu: Mapping[str, Any]) -> list[Diagnostic]:
    """A load scenario's own findings: a server that could not keep up with the offered rate,
    more threads than cores (``cpu``: the environment's CPU record); none for a single stream."""
    if config.scenario == "single-stream":
        return []
    found = (
        overload(figures),
        oversubscription(config, cpu.get("physical_cores"), cpu.get("logical_cores")),
    )
    return [d for d in found if d is not None]
