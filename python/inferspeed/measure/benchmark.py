"""``inferspeed.benchmark``: the one entry point that measures a model under a Config, whatever
its metric, in this process or in several.

The metric (``Config.metric``, a row of :data:`inferspeed.metrics.METRICS`) chooses the
measurement from :data:`MEASURERS`: latency is timed by a :class:`Session` (in fresh worker
processes with ``processes`` > 1), instructions are counted under Valgrind in a process of
their own (:func:`~inferspeed.measure.instructions.count_instructions`). Every command and
tool that measures a model whatever its metric (``run``, ``gate``, a sweep's cell, the pytest
plugin) goes through :func:`benchmark`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ..config import Config
from ..results.result import Result
from .instructions import count_instructions
from .processes import measure_in_processes
from .session import Session

__all__ = ["MEASURERS", "benchmark"]


def _latency(model: Any, config: Config) -> Result:
    """Wall-clock latency: a Session in this process, or pooled worker processes."""
    if config.processes > 1:
        if not isinstance(model, (str, os.PathLike)):
            with Session(model, config.replace(processes=1)) as session:  # writes it to a file
                return measure_in_processes(session.model_path, config)
        return measure_in_processes(model, config)
    with Session(model, config) as session:
        return session.measure()


def _instructions(model: Any, config: Config) -> Result:
    return count_instructions(model, config)


#: How each metric measures a model, by the metric's name.
MEASURERS: Mapping[str, Callable[[Any, Config], Result]] = MappingProxyType(
    {"latency": _latency, "generation": _latency, "instructions": _instructions}
)


def benchmark(model: Any, config: Config | None = None, **options: Any) -> Result:
    """Measure ``model`` once with ``config`` / ``options`` and return the :class:`Result`.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        The model: a file (its external data beside it), or the model in memory (written to a
        temporary file for ONNX Runtime).
    config : Config, optional
        Every setting of the measurement (:class:`~inferspeed.config.Config`); default
        ``Config()``.
    **options
        Fields of :class:`~inferspeed.config.Config` that replace ``config``'s (an unknown
        name is a ConfigError).

    With ``metric="latency"`` (the default) the model is timed in a closed loop or the
    configured load scenario (``Session(model, config).measure()``; with ``processes`` > 1,
    in that many fresh processes, pooled). With ``metric="instructions"``, the instructions of
    each call are counted under Valgrind instead
    (:func:`~inferspeed.measure.instructions.count_instructions`).

    Raises
    ------
    InferspeedError
        A subclass for bad input (ConfigError, ModelError, InputError, ...).
    BenchmarkInterrupted
        On Ctrl-C, carrying the partial result.
    """
    merged = Config.from_options(config, **options)
    return MEASURERS[merged.metric](model, merged)
