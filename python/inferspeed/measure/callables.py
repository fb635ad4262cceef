"""``inferspeed.timeit``: any Python callable timed in the C++ loop, with the statistics,
diagnostics and reports of a model's run.

Each sample is one pair of C++ clock reads around ``batch`` calls of ``fn(*args, **kwargs)``
(made through ``PyObject_Vectorcall``, the GIL held: Python code needs it). With ``batch`` > 1
the sample is the batch's time divided by ``batch``, rounded to a nanosecond: for work of a
few nanoseconds, where one pair of clock reads (~20 ns) would swamp it. The loop's own cost,
an empty callable timed the same way with the same arguments, is measured first and reported
as ``loop.loop_overhead_ns``; it is included in every sample, not subtracted (as the clock's
overhead is not for models).

The warm-up, the timed loop, adaptive stopping, the statistics and diagnostics are a model's:
:class:`CallableTarget` goes through the same path (:mod:`inferspeed.measure.measurement`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .. import _core
from ..config import CHUNK_TIME, Config
from ..errors import ConfigError
from ..facts.environment import capture_environment
from ..results.result import Result
from ..stats.summary import Stats
from .measurement import Target, run_measurement

__all__ = ["OVERHEAD_TIME", "CallableTarget", "timeit"]

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


class CallableTarget(Target):
    """One measurement of ``fn(*args, **kwargs)``, ``batch`` calls per sample; the loop's own
    cost (an empty callable's, same arguments) is timed first on the pinned thread. Ctrl-C in
    the warm-up leaves nothing to report."""

    keeps_warmup = False
    nothing_measured = "timeit interrupted during warm-up; nothing was measured"

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        batch: int,
        name: str,
        config: Config,
        environment: Mapping[str, Any],
    ) -> None:
        super().__init__(config, environment)
        self.calls_per_sample = batch
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._name = name
        self._overhead = np.zeros(0, np.int64)

    def _time(self, fn: Callable[..., Any], iterations: int | None, seconds: float | None) -> dict[str, Any]:
        return _core.time_callable(
            fn,
            self._args,
            self._kwargs,
            max_iterations=iterations or 0,
            max_ns=int(seconds * 1e9) if seconds else 0,
            chunk_ns=int(CHUNK_TIME * 1e9),
            batch=self.calls_per_sample,
        )

    def loop(self, iterations: int | None, seconds: float | None) -> dict[str, Any]:
        return self._time(self._fn, iterations, seconds)

    def start(self) -> None:
        self._overhead = self._time(_empty, None, OVERHEAD_TIME)["samples_ns"]

    def loop_fields(self) -> dict[str, Any]:
        batch = self.calls_per_sample
        overhead = self._overhead
        return {
            "callable": self._name,
            "batch": batch,
            "loop_overhead_ns": float(np.median(overhead)) / batch if overhead.size else None,
        }

    def fields(self, stats: Stats) -> dict[str, Any]:
        config = {k: v for k, v in self.config.to_dict().items() if k in TIMEIT_OPTIONS}
        return {
            "model": {"name": self._name, "kind": "callable"},
            "config": config | {"batch": self.calls_per_sample},
            "session": {},
        }


def timeit(
    fn: Callable[..., Any],
    *args: Any,
    kwargs: Mapping[str, Any] | None = None,
    batch: int = 1,
    name: str | None = None,
    **options: Any,
) -> Result:
    """Time ``fn(*args, **kwargs)`` in inferspeed's C++ loop and return a :class:`Result`.

    Parameters
    ----------
    fn : callable
        What is timed; called with the GIL held.
    *args
        Positional arguments of every call, the same objects each time.
    kwargs : mapping of str to object, optional
        Keyword arguments of every call, as a mapping (so that they cannot clash with
        timeit's own keywords). None (the default): none.
    batch : int, default 1
        Calls per sample, a positive integer: a sample is the time of ``batch`` calls divided
        by ``batch`` (see the module's docstring), for work of a few nanoseconds.
    name : str, optional
        The name the Result gives ``fn`` (``model.name``). None (the default): ``fn``'s
        ``__qualname__``, else its ``__name__``, else its type's name.
    **options
        The loop's :class:`~inferspeed.Config` fields (``iterations``, ``max_time``,
        ``warmup_iterations``, ``warmup_time``, ``target_ci``, ``target_percentile``,
        ``drop_outliers``, ``pin``), with the same defaults as a model's run; any other name
        is a ConfigError.

    Returns
    -------
    Result
        The samples (ns per call) with a model's statistics and diagnostics; ``loop`` holds
        the callable's name, ``batch`` and ``loop_overhead_ns``.

    Raises
    ------
    ConfigError
        ``fn`` not callable, a bad ``batch``, or an option that is not a loop field.
    BenchmarkInterrupted
        On Ctrl-C in the timed loop, carrying the samples so far. Ctrl-C during the warm-up
        raises KeyboardInterrupt: nothing was measured.

    An exception raised by ``fn`` propagates.
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
    target = CallableTarget(
        fn, tuple(args), dict(kwargs or {}), batch, name or _name(fn), config, capture_environment()
    )
    return run_measurement(target)
