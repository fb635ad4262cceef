"""The one measurement path, for a model's session and a Python callable alike.

:func:`run_measurement` pins the timing thread, warms up, runs the timed phase (a closed loop
to its limits, adaptive stopping, or a load scenario), then makes the statistics, the
diagnostics and the warm-up's cold-start figures into a :class:`Result`; on Ctrl-C the partial
result goes out in :class:`BenchmarkInterrupted`. It emits the progress events (``warmup``,
``timed``, ``measured``) on the way.

What differs between a model and a callable is the :class:`Target`'s: the core loop that times
one chunk of calls, work around it on the pinned thread, the calls in one sample, a load
scenario's timed phase, and the fields of the Result that describe what was measured
(:class:`~inferspeed.measure.model.ModelTarget`, :class:`~inferspeed.measure.callables.CallableTarget`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..config import MAX_SAMPLES, Config
from ..errors import BenchmarkInterrupted, ConfigError, OrtError
from ..events import emit
from ..facts.machine import cpu_snapshot, other_load, steal
from ..results.result import Result
from ..stats.diagnostics import Diagnostic, diagnose, steady_state
from ..stats.summary import Stats, summarize
from .history import MachineHistory, machine_history, over_time, remember
from .loop import Timed, closed_loop, pinned, warm_until_steady
from .scenarios import deadline_stats, scenario_warnings

__all__ = ["Target", "run_measurement"]


class Target(abc.ABC):
    """What one measurement times, and what its Result says about it.

    Parameters
    ----------
    config : Config
        The measurement's configuration (its loop fields are read here).
    environment : Mapping
        The machine and software record (``capture_environment()``) the Result carries; its
        clock overhead is the statistics' timer overhead.
    """

    #: Calls per sample (timeit's ``batch``): samples are divided by it into per-call times.
    calls_per_sample: int = 1
    #: Ctrl-C in the warm-up leaves its calls as a partial result, marked by
    #: ``loop.interrupted_in``; without, it leaves nothing (KeyboardInterrupt).
    keeps_warmup: bool = True
    #: The KeyboardInterrupt's message when Ctrl-C came before anything could be reported.
    nothing_measured: str = "interrupted before the first call was measured"

    def __init__(self, config: Config, environment: Mapping[str, Any]) -> None:
        self.config = config
        self.environment = environment

    @abc.abstractmethod
    def loop(self, iterations: int | None, seconds: float | None) -> dict[str, Any]:
        """One closed-loop chunk in the core, to whichever limit comes first (None: none):
        the core's dict with ``samples_ns`` and ``interrupted``."""

    def start(self) -> None:
        """Work on the pinned thread before the warm-up and its CPU snapshot (none here)."""
        return None

    def noise_basis(self, samples: np.ndarray) -> tuple[np.ndarray, str | None]:
        """What the stability checks look at: the samples as they are (None: say nothing of
        it), or a view of them without what the target does on purpose, with its name."""
        return samples, None

    def timed_phase(self) -> None:
        """The warm-up is over and the timed phase begins (nothing to do here)."""
        return None

    def stop(self) -> None:
        """Work on the pinned thread after the timed phase and its CPU snapshot (none here)."""
        return None

    def run_scenario(self, warm_ns: np.ndarray) -> Timed:
        """The timed phase of a load scenario (``config.scenario`` other than single-stream);
        ``warm_ns``: the warm-up's samples."""
        raise ConfigError(f"the {self.config.scenario} scenario measures a model's session")

    @abc.abstractmethod
    def loop_fields(self) -> dict[str, Any]:
        """The Result's ``loop`` entries of this kind, before the shared ones (pinned CPU,
        other processes' load)."""

    @abc.abstractmethod
    def fields(self, stats: Stats) -> dict[str, Any]:
        """The Result's fields that describe what was measured: ``model``, ``config`` and
        ``session``, and ``notices``, ``memory`` or ``compute`` where the kind has them."""


def run_measurement(target: Target) -> Result:
    """Measure ``target``: warm-up, timed phase, statistics, diagnostics, the Result.

    Raises
    ------
    BenchmarkInterrupted
        On Ctrl-C once something can be reported; its ``result`` holds it (``interrupted``).
    KeyboardInterrupt
        On Ctrl-C before that.
    """
    config = target.config
    known = machine_history() if config.scenario == "single-stream" else MachineHistory()
    warm, timed, machine = _phases(target, known)
    load = machine["other_load_cores"]
    samples = _reported_samples(target, warm, timed)
    per_call = _per_call(samples, target.calls_per_sample)
    stats = summarize(
        per_call,
        timer_overhead_ns=float(target.environment["clock"]["overhead_ns"]) / target.calls_per_sample,
        drop_outliers=config.drop_outliers,
    )
    monitor = timed.monitor
    warnings = _warnings(target, per_call, stats, timed, int(warm.size), machine)
    loop = {
        **target.loop_fields(),
        "pinned_cpu": config.pin,
        "other_load_cores": None if load is None else round(load, 3),
        "steal_cores": None if machine["steal_cores"] is None else round(machine["steal_cores"], 3),
    }
    if target.keeps_warmup:
        # Says whether a partial result holds warm-up calls (a target that keeps none has
        # nothing to tell apart).
        loop["interrupted_in"] = (
            ("timed loop" if timed.samples_ns.size else "warm-up") if timed.interrupted else None
        )
    result = Result(
        samples_ns=per_call,
        stats=stats,
        environment=target.environment,
        warmup={**_warmup_record(warm, warnings, target.calls_per_sample), **machine["warmup"]},
        loop=loop,
        stopping=timed.stopping,
        warnings=tuple(warnings),
        interrupted=timed.interrupted,
        scenario=config.scenario,
        scenario_stats={**timed.figures, **deadline_stats(per_call, config.deadline)},
        monitor=monitor,
        **target.fields(stats),
    )
    if monitor is not None and timed.samples_ns.size:
        result = over_time(result, known)
    emit("measured", interrupted=timed.interrupted)
    if timed.interrupted:
        raise BenchmarkInterrupted(result)
    remember(known, result)
    return result


def _phases(target: Target, known: MachineHistory) -> tuple[np.ndarray, Timed, dict[str, Any]]:
    """The warm-up and the timed phase on the pinned thread: (the warm-up's samples, the timed
    phase, the machine meanwhile: CPU cores other processes used, cores of steal time (None
    when unknown), and how the warm-up ended)."""
    config = target.config
    w_iters, w_time = config.warmup_limits
    warm = np.zeros(0, np.int64)
    timed = Timed(np.zeros(0, np.int64), interrupted=True)  # unless the warm-up ends by itself
    until_steady = config.warmup_iterations is None and config.warmup_time is None
    steady: bool | None = None
    with pinned(config.pin):
        target.start()
        before = cpu_snapshot()
        interrupted = False
        if until_steady:
            emit("warmup")
            warm, interrupted, steady = warm_until_steady(target.loop)
        elif (w_iters is None or w_iters > 0) and (w_time is None or w_time > 0):
            emit("warmup")
            w = target.loop(w_iters, w_time)
            warm, interrupted = w["samples_ns"], bool(w["interrupted"])
        if not interrupted:
            target.timed_phase()
            emit("timed", scenario=config.scenario)
            if config.scenario == "single-stream":
                timed = closed_loop(target.loop, config, known.between)
            else:
                timed = target.run_scenario(warm)
        after = cpu_snapshot()
        target.stop()
    return (
        warm,
        timed,
        {
            "other_load_cores": None if before is None or after is None else other_load(before, after),
            "steal_cores": None if before is None or after is None else steal(before, after),
            "warmup": {"until_steady": until_steady, "steady": steady},
        },
    )


def _reported_samples(target: Target, warm: np.ndarray, timed: Timed) -> np.ndarray:
    """The samples the Result reports: the timed ones; when Ctrl-C came in the warm-up, its
    calls, for a target that keeps them."""
    if timed.samples_ns.size:
        return timed.samples_ns
    if not timed.interrupted:
        raise OrtError("the timed loop produced no samples")
    if not target.keeps_warmup or warm.size == 0:
        raise KeyboardInterrupt(target.nothing_measured)
    return warm


def _per_call(samples: np.ndarray, calls: int) -> np.ndarray:
    """Samples of ``calls`` calls each as per-call times, rounded to a nanosecond."""
    return samples if calls == 1 else np.rint(samples / calls).astype(np.int64)


def _warnings(
    target: Target,
    per_call: np.ndarray,
    stats: Stats,
    timed: Timed,
    warmup_samples: int,
    machine: dict[str, Any],
) -> list[Diagnostic]:
    """The stability diagnostics, then the load scenario's own findings."""
    cpu = target.environment["cpu"]
    service = timed.service_ns
    # For a server, the noise checks look at what the model did (service times); queueing is
    # reported by the overload check instead.
    basis, of = (
        (service, "service times") if service is not None and service.size else target.noise_basis(per_call)
    )
    found = diagnose(
        basis,
        stats if basis is per_call else summarize(basis),
        warmup_iterations=warmup_samples,
        other_load_cores=machine["other_load_cores"],
        logical_cores=cpu.get("logical_cores"),
        governor=cpu.get("governor"),
        steal_cores=machine["steal_cores"],
        of=of,
    )
    if timed.capped:
        found.append(_sample_limit(per_call.size))
    return found + scenario_warnings(target.config, timed.figures, cpu)


def _sample_limit(samples: int) -> Diagnostic:
    """The timed loop stopped at the core's sample limit, before the time it was given."""
    return Diagnostic(
        "sample_limit",
        f"the timed loop stopped at {samples} samples, the most one loop holds, before its time "
        "limit: the run is shorter than asked; the figures cover what was measured",
        {"samples": samples, "max_samples": MAX_SAMPLES},
    )


def _warmup_record(warm: np.ndarray, warnings: list[Diagnostic], calls: int) -> dict[str, Any]:
    """The Result's ``warmup``: its calls and time, and the cold start: iterations (the cold
    first run of a model's session not counted) until latency reached its steady state, and
    the first warm-up call."""
    per_call = _per_call(warm, calls)
    return {
        "iterations": int(warm.size) * calls,
        "time_ns": int(warm.sum()),
        **steady_state(per_call, warnings, per_sample=calls),
        "first_iteration_ns": int(per_call[0]) if warm.size else None,
    }
