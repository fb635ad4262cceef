"""``inferspeed.timeit``: any Python callable timed in the C++ loop, with the statistics,
diagnostics and reports of a model's run.

Each sample is one pair of C++ clock reads around ``batch`` calls of ``fn(*args, **kwargs)``
(made through ``PyObject_Vectorcall``, the GIL held: Python code needs it). With ``batch`` > 1
the sample is the batch's time divided by ``batch``, rounded to a nanosecond: for work of a
few nanoseconds, where one pair of clock reads (~20 ns) would swamp it. The loop's own cost,
an empty callable timed the same way with the same arguments, is measured first and reported
as ``loop.loop_overhead_ns``; it is included in every sample, not subtracted (as the clock's
overhead is not for models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .. import _core
from ..config import CHUNK_TIME, Config
from ..errors import ConfigError
from ..facts.environment import capture_environment
from ..facts.machine import cpu_snapshot, other_load
from ..results.result import BenchmarkInterrupted, Result
from ..stats.diagnostics import diagnose, steady_state
from ..stats.summary import summarize
from .loop import adaptive_loop, pinned

__all__ = ["OVERHEAD_TIME", "timeit"]

#: Seconds spent timing the empty callable that gives the loop's own overhead.
OVERHEAD_TIME = 0.05

#: Config fields timeit takes (the loop's; the rest describe a model's session).
TIMEIT_OPTIONS = frozenset(
    {
        "iterations", "max_time", "warmup_iterations", "warmup_time", "target_ci", "target_percentile",
        "drop_outliers", "pin",
    }
)  # fmt: skip


def _empty(*args: Any, **kwargs: Any) -> None:
    return None


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__)


def timeit(
    fn: Callable[..., Any],
    *args: Any,
    kwargs: Mapping[str, Any] | None = None,
    batch: int = 1,
    name: str | None = None,
    **options: Any,
) -> Result:
    """Time ``fn(*args, **kwargs)`` in inferspeed's C++ loop and return a :class:`Result`.

    ``options``: the loop's :class:`Config` fields (``iterations``, ``max_time``,
    ``warmup_iterations``, ``warmup_time``, ``target_ci``, ``target_percentile``,
    ``drop_outliers``, ``pin``), with the same defaults as a model's run. ``batch``: calls per
    sample (see the module's docstring). An exception raised by ``fn`` propagates; Ctrl-C
    raises :class:`BenchmarkInterrupted` with the samples so far.
    """

    if not callable(fn):
        raise ConfigError(f"timeit needs a callable, got {type(fn).__name__}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"batch must be a positive integer, got {batch!r}")
    bad = sorted(set(options) - TIMEIT_OPTIONS)
    if bad:
        raise ConfigError(
            f"timeit takes only loop options ({', '.join(sorted(TIMEIT_OPTIONS))}); got {', '.join(bad)}"
        )
    config = Config(**options)
    call_args = tuple(args)
    call_kwargs = dict(kwargs or {})

    def loop(target: Callable[..., Any], iterations: int | None, seconds: float | None) -> dict[str, Any]:
        return _core.time_callable(
            target,
            call_args,
            call_kwargs,
            max_iterations=iterations or 0,
            max_ns=int(seconds * 1e9) if seconds else 0,
            chunk_ns=int(CHUNK_TIME * 1e9),
            batch=batch,
        )

    environment = capture_environment()
    w_iters, w_time = config.warmup_limits
    stopping: dict[str, Any] | None = None
    warm = np.zeros(0, np.int64)
    timed = np.zeros(0, np.int64)
    interrupted = False
    with pinned(config.pin):
        overhead = loop(_empty, None, OVERHEAD_TIME)["samples_ns"]
        before = cpu_snapshot()
        if (w_iters is None or w_iters > 0) and (w_time is None or w_time > 0):
            w = loop(fn, w_iters, w_time)
            warm, interrupted = w["samples_ns"], bool(w["interrupted"])
        if not interrupted:
            if config.target_ci is None:
                iterations, seconds = config.loop_limits
                r = loop(fn, iterations, seconds)
                timed, interrupted = r["samples_ns"], bool(r["interrupted"])
            else:
                timed, interrupted, stopping = adaptive_loop(lambda n, t: loop(fn, n, t), config)
        after = cpu_snapshot()
    if timed.size == 0:
        raise KeyboardInterrupt("timeit interrupted during warm-up; nothing was measured")
    per_call = timed if batch == 1 else np.rint(timed / batch).astype(np.int64)
    warm_per_call = warm if batch == 1 else np.rint(warm / batch).astype(np.int64)
    stats = summarize(
        per_call,
        timer_overhead_ns=float(environment["clock"]["overhead_ns"]) / batch,
        drop_outliers=config.drop_outliers,
    )
    load = other_load(before, after) if before is not None and after is not None else None
    warnings = diagnose(
        per_call,
        stats,
        warmup_iterations=int(warm.size),
        other_load_cores=load,
        logical_cores=environment["cpu"].get("logical_cores"),
        governor=environment["cpu"].get("governor"),
    )
    result = Result(
        samples_ns=per_call,
        stats=stats,
        model={"name": name or _name(fn), "kind": "callable"},
        config={k: v for k, v in config.to_dict().items() if k in TIMEIT_OPTIONS} | {"batch": batch},
        environment=environment,
        session={},
        warmup={
            "iterations": int(warm.size) * batch,
            "time_ns": int(warm.sum()),
            **steady_state(warm_per_call, warnings, per_sample=batch),
            "first_iteration_ns": int(warm_per_call[0]) if warm.size else None,
        },
        loop={
            "callable": name or _name(fn),
            "batch": batch,
            "loop_overhead_ns": float(np.median(overhead)) / batch if overhead.size else None,
            "pinned_cpu": config.pin,
            "other_load_cores": None if load is None else round(load, 3),
        },
        stopping=stopping,
        warnings=tuple(warnings),
        interrupted=interrupted,
    )
    if interrupted:
        raise BenchmarkInterrupted(result)
    return result
