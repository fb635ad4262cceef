"""The steps of one measurement around the core's loop: pinning the timing thread, the timed
phase of a closed loop (to its limits, or adaptive stopping: growing chunks until the targeted
intervals are narrow enough) and what a timed phase hands back (:class:`Timed`)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from ..config import Config
from ..errors import ConfigError
from ..stats.summary import median_ci, min_samples_for_ci, quantile_ci, relative_halfwidth

__all__ = ["LoopChunk", "Timed", "adaptive_loop", "closed_loop", "pinned"]

#: One chunk of a closed loop in the core: ``loop(iterations, seconds)`` calls until either
#: limit (None: no limit) and returns the core's dict (``samples_ns``, ``interrupted``, ...).
LoopChunk: TypeAlias = Callable[[int | None, float | None], dict[str, Any]]


#: Adaptive stopping: the first chunk's length, the longest chunk (s) and the fewest samples
#: before the first check (an interval from fewer is too coarse to trust).
ADAPTIVE_FIRST_CHUNK = 0.05


ADAPTIVE_MAX_CHUNK = 1.0


ADAPTIVE_MIN_SAMPLES = 100


@dataclass
class Timed:
    """What the timed phase of a measurement measured.

    Attributes
    ----------
    samples_ns : numpy.ndarray
        int64 latency of each timed sample, in order (a server's: from each request's
        scheduled arrival to its completion).
    interrupted : bool
        Ctrl-C stopped the phase before its limit.
    service_ns : numpy.ndarray or None
        A server's service times (start to end of each request): the noise checks read them,
        since the latencies include queueing, which the overload check reports instead.
    figures : dict
        The load scenario's figures (``Result.scenario_stats``).
    stopping : dict or None
        Adaptive stopping's record (``Result.stopping``).
    capped : bool
        The loop stopped at the core's sample limit (``MAX_SAMPLES``) before its own limits.
    """

    samples_ns: np.ndarray
    interrupted: bool
    service_ns: np.ndarray | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    stopping: dict[str, Any] | None = None
    capped: bool = False


def closed_loop(loop: LoopChunk, config: Config) -> Timed:
    """The timed phase of a closed loop (single stream): ``loop`` to ``config``'s loop limits,
    or in chunks until the targeted intervals are narrow enough when ``target_ci`` is set."""
    if config.target_ci is None:
        iterations, seconds = config.loop_limits
        r = loop(iterations, seconds)
        return Timed(r["samples_ns"], bool(r["interrupted"]), capped=bool(r.get("capped", False)))
    samples, interrupted, stopping = adaptive_loop(loop, config)
    return Timed(samples, interrupted, stopping=stopping)


def adaptive_loop(loop: LoopChunk, config: Config) -> tuple[np.ndarray, bool, dict[str, Any]]:
    """Measure in growing chunks until the targeted intervals are narrow enough or a loop
    limit is reached. ``loop(iterations, seconds)`` runs one chunk (a core loop's dict).
    Returns (samples, interrupted, stopping record)."""
    assert config.target_ci is not None
    iterations, seconds = config.loop_limits
    targets = [0.5] + ([config.target_percentile / 100.0] if config.target_percentile else [])
    needed = max(ADAPTIVE_MIN_SAMPLES, *(min_samples_for_ci(q) for q in targets))
    chunks: list[np.ndarray] = []
    count = 0
    checks = 0
    widths: dict[str, float | None] = {}
    met = interrupted = False
    chunk_time = ADAPTIVE_FIRST_CHUNK
    start = time.monotonic()
    while True:
        left_time = None if seconds is None else seconds - (time.monotonic() - start)
        left_iterations = None if iterations is None else iterations - count
        if (left_time is not None and left_time <= 0) or (
            left_iterations is not None and left_iterations <= 0
        ):
            break
        step = chunk_time if left_time is None else min(chunk_time, left_time)
        r = loop(left_iterations, step)
        chunks.append(r["samples_ns"])
        count += r["samples_ns"].size
        if r["interrupted"]:
            interrupted = True
            break
        chunk_time = min(chunk_time * 1.5, ADAPTIVE_MAX_CHUNK)
        if count < needed:
            continue
        checks += 1
        x = np.concatenate(chunks)
        chunks = [x]
        widths = {_percentile_label(q): _relative_width(x, q) for q in targets}
        if all(w is not None and w <= config.target_ci for w in widths.values()):
            met = True
            break
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
    stopping = {
        "target_ci": config.target_ci,
        "target_percentile": config.target_percentile,
        "met": met,
        "samples": int(samples.size),
        "checks": checks,
        "relative_halfwidths": widths,
        "elapsed_s": round(time.monotonic() - start, 6),
    }
    return samples, interrupted, stopping


def _percentile_label(q: float) -> str:
    return "median" if q == 0.5 else f"p{q * 100:g}"


def _relative_width(x: np.ndarray, q: float) -> float | None:
    """Relative half-width of the ``q`` quantile's interval, as the final Stats will report it."""
    center = float(np.partition(x, int((x.size - 1) * q))[int((x.size - 1) * q)])
    interval = median_ci(x) if q == 0.5 else quantile_ci(x, q, presorted=False)
    return relative_halfwidth(center, interval)


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Pin the calling thread (the one that runs the timed loop) to ``cpu`` for the block."""
    if cpu is None:
        yield
        return
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("pinning (--pin) is not supported on this platform")
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise ConfigError(f"cannot pin to CPU {cpu}: this process may use CPUs {sorted(allowed)}")
    os.sched_setaffinity(0, {cpu})  # pid 0: this thread only (Linux)
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)
