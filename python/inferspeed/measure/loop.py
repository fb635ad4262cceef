"""The steps of one measurement around the core's loop: pinning the timing thread, the timed
phase of a closed loop (to its limits, or adaptive stopping: growing chunks until the targeted
intervals are narrow enough) and what a timed phase hands back (:class:`Timed`)."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from .. import _core
from ..config import (
    DEFAULT_WARMUP_TIME,
    MAX_SAMPLES,
    MONITOR_SLICE_TIME,
    WARMUP_CHUNK_TIME,
    WARMUP_MAX_TIME,
    WARMUP_STEADY_CHUNKS,
    WARMUP_STEADY_TOLERANCE,
    Config,
)
from ..errors import ConfigError
from ..stats.summary import median_ci, min_samples_for_ci, quantile_ci, relative_halfwidth
from ..stats.timeseries import Between, run_variance
from .monitor import Monitor

__all__ = ["AdaptiveStop", "LoopChunk", "Timed", "closed_loop", "pinned", "sliced_loop", "warm_until_steady"]

#: One chunk of a closed loop in the core: ``loop(iterations, seconds)`` calls until either
#: limit (None: no limit) and returns the core's dict (``samples_ns``, ``interrupted``, ...).
LoopChunk: TypeAlias = Callable[[int | None, float | None], dict[str, Any]]


#: Adaptive stopping: the first chunk's length, the longest chunk (s) and the fewest samples
#: before the first check (an interval from fewer is too coarse to trust).
ADAPTIVE_FIRST_CHUNK = 0.05


ADAPTIVE_MAX_CHUNK = 1.0


ADAPTIVE_MIN_SAMPLES = 100

#: Adaptive stopping never stops before this many seconds, nor before this many times the
#: switching time the machine's history saw.
ADAPTIVE_MIN_SPAN = 1.0
ADAPTIVE_SPAN_SWITCHES = 3.0


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
    monitor : dict or None
        The machine-speed monitor's record (``Result.monitor``): a closed loop's only.
    """

    samples_ns: np.ndarray
    interrupted: bool
    service_ns: np.ndarray | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    stopping: dict[str, Any] | None = None
    capped: bool = False
    monitor: dict[str, Any] | None = None


def closed_loop(loop: LoopChunk, config: Config, between: Between | None = None) -> Timed:
    """The timed phase of a closed loop (single stream): ``loop`` to ``config``'s loop limits,
    or until the targeted intervals are narrow enough when ``target_ci`` is set (the median's
    for another run on this machine: ``between`` is the machine's history), in slices with a
    reading of the machine-speed monitor between them
    (:class:`~inferspeed.measure.monitor.Monitor`). The samples are those of one loop run to
    the same limits: every slice's, in order."""
    iterations, seconds = config.loop_limits
    monitor = Monitor()
    adaptive = None if config.target_ci is None else AdaptiveStop(config, between)
    samples, interrupted, capped = sliced_loop(loop, iterations, seconds, monitor, adaptive)
    return Timed(
        samples,
        interrupted,
        stopping=None if adaptive is None else adaptive.record(samples, monitor.elapsed_s()),
        capped=capped,
        monitor=monitor.record(samples),
    )


def sliced_loop(
    loop: LoopChunk,
    iterations: int | None,
    seconds: float | None,
    monitor: Monitor,
    stop: Callable[[list[np.ndarray], float], bool] | None = None,
    slice_time: float = MONITOR_SLICE_TIME,
) -> tuple[np.ndarray, bool, bool]:
    """Run ``loop`` in slices of at most ``slice_time`` seconds until ``iterations`` samples or
    ``seconds`` (None: no such limit), Ctrl-C, MAX_SAMPLES samples, or ``stop(chunks, elapsed)``
    says so; ``monitor`` reads the machine's speed before the first slice and after each.
    Returns (samples in order, interrupted, capped)."""
    chunks: list[np.ndarray] = []
    count = 0
    interrupted = capped = False
    try:
        monitor.read()
        start = monitor.elapsed_s()
        while True:
            elapsed = monitor.elapsed_s() - start
            left_time = None if seconds is None else seconds - elapsed
            left = MAX_SAMPLES - count if iterations is None else min(iterations, MAX_SAMPLES) - count
            if (left_time is not None and left_time <= 0) or left <= 0:
                capped = count >= MAX_SAMPLES and (iterations is None or iterations > MAX_SAMPLES)
                break
            # Never 0: a core loop reads 0 as "no time limit".
            step = slice_time if left_time is None else max(min(slice_time, left_time), 1e-6)
            r = loop(left, step)
            x = r["samples_ns"]
            chunks.append(x)
            count += x.size
            monitor.add_slice(int(r.get("start_ns", 0)), int(r.get("end_ns", 0)), int(x.size))
            monitor.read()
            if r["interrupted"]:
                interrupted = True
                break
            if r.get("capped"):  # the core's own limit, within one slice
                capped = True
                break
            if stop is not None and stop(chunks, monitor.elapsed_s() - start):
                break
    except KeyboardInterrupt:
        # Ctrl-C between two slices, in Python: the same as in a slice (the loop keeps what it
        # measured).
        interrupted = True
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
    return samples, interrupted, capped


def warm_until_steady(loop: LoopChunk) -> tuple[np.ndarray, bool, bool]:
    """The default warm-up: chunks of WARMUP_CHUNK_TIME seconds until, after at least
    DEFAULT_WARMUP_TIME seconds, the medians of the last WARMUP_STEADY_CHUNKS chunks lie within
    WARMUP_STEADY_TOLERANCE of each other, or WARMUP_MAX_TIME seconds have passed. Returns
    (the warm-up's samples, interrupted, steady: it ended because latency was steady)."""
    chunks: list[np.ndarray] = []
    medians: list[float] = []
    start = _core.now_ns()
    interrupted = steady = False
    try:
        while True:
            r = loop(None, WARMUP_CHUNK_TIME)
            chunks.append(r["samples_ns"])
            if r["samples_ns"].size:
                medians.append(float(np.median(r["samples_ns"])))
            if r["interrupted"]:
                interrupted = True
                break
            elapsed = (_core.now_ns() - start) / 1e9
            last = medians[-WARMUP_STEADY_CHUNKS:]
            if elapsed >= DEFAULT_WARMUP_TIME and len(last) == WARMUP_STEADY_CHUNKS:
                steady = max(last) <= min(last) * (1.0 + WARMUP_STEADY_TOLERANCE)
            if steady or elapsed >= WARMUP_MAX_TIME:
                break
    except KeyboardInterrupt:
        interrupted = True
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
    return samples, interrupted, steady


class AdaptiveStop:
    """Adaptive stopping (``target_ci``): after each slice, once there are enough samples and
    the run has spanned the machine's switching time (ADAPTIVE_MIN_SPAN seconds, or
    ADAPTIVE_SPAN_SWITCHES times the switching time the machine's history saw, whichever is
    longer: an interval from less has not seen the machine change), whether the targeted
    intervals are within the target, the median's from the run's own uncertainty of it, its
    variation in time included (:func:`~inferspeed.stats.timeseries.run_variance`): what more
    samples shrink; checks come at growing intervals (ADAPTIVE_FIRST_CHUNK, x1.5, up to
    ADAPTIVE_MAX_CHUNK seconds apart)."""

    def __init__(self, config: Config, between: Between | None = None) -> None:
        assert config.target_ci is not None
        self.target = float(config.target_ci)
        self.percentile = config.target_percentile
        self.targets = [0.5] + ([config.target_percentile / 100.0] if config.target_percentile else [])
        self.needed = max(ADAPTIVE_MIN_SAMPLES, *(min_samples_for_ci(q) for q in self.targets))
        self.between = between or Between()
        switching = self.between.switching_time_s or 0.0
        self.min_span_s = max(ADAPTIVE_MIN_SPAN, ADAPTIVE_SPAN_SWITCHES * switching)
        self.checks = 0
        self.widths: dict[str, float | None] = {}
        self.met = False
        self.next_check_s = ADAPTIVE_FIRST_CHUNK
        self.gap_s = ADAPTIVE_FIRST_CHUNK

    def __call__(self, chunks: list[np.ndarray], elapsed_s: float) -> bool:
        if elapsed_s < self.next_check_s or elapsed_s < self.min_span_s:
            return False
        self.gap_s = min(self.gap_s * 1.5, ADAPTIVE_MAX_CHUNK)
        self.next_check_s = elapsed_s + self.gap_s
        x = np.concatenate(chunks)
        chunks[:] = [x]
        if x.size < self.needed:
            return False
        self.checks += 1
        self.widths = {_percentile_label(q): self._width(x, q) for q in self.targets}
        self.met = all(w is not None and w <= self.target for w in self.widths.values())
        return self.met

    def _width(self, x: np.ndarray, q: float) -> float | None:
        within = _relative_width(x, q)
        if q != 0.5 or within is None:
            return within
        # What more samples shrink: the run's own uncertainty of its median (its order
        # statistics and its variation in time), not what no run sees (another session's
        # offset, which the printed interval for another run adds).
        own = run_variance(x, float(np.median(x)), median_ci(x))["v"]
        return max(within, math.expm1(1.959964 * math.sqrt(own)))

    def record(self, samples: np.ndarray, elapsed_s: float) -> dict[str, Any]:
        """The Result's ``stopping``; the half-widths reached at the end when the run stopped
        before its first check (a time limit shorter than the minimum span)."""
        if self.checks == 0 and samples.size >= self.needed:
            self.widths = {_percentile_label(q): self._width(samples, q) for q in self.targets}
        return {
            "target_ci": self.target,
            "target_percentile": self.percentile,
            "met": self.met,
            "samples": int(samples.size),
            "checks": self.checks,
            "relative_halfwidths": self.widths,
            "min_span_s": round(self.min_span_s, 3),
            "elapsed_s": round(elapsed_s, 6),
        }


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
