"""``inferspeed.benchmark``: one measurement of a model, in this process or in several."""

from __future__ import annotations

import os
from typing import Any

from ..config import Config
from ..results.result import Result
from .processes import measure_in_processes
from .session import Session

__all__ = ["benchmark"]


def benchmark(model: Any, config: Config | None = None, **options: Any) -> Result:
    """Measure ``model`` once with ``config`` / ``options`` and return the :class:`Result`.

    Equivalent to ``Session(model, config, **options).measure()``; see :class:`Config` for
    the options. With ``metric="instructions"``, the instructions of each call are counted
    under Valgrind instead (:func:`~inferspeed.measure.instructions.count_instructions`).
    Raises an :class:`~inferspeed.InferspeedError` subclass for bad input and
    :class:`~inferspeed.BenchmarkInterrupted` (carrying the partial result) on Ctrl-C.
    """
    merged = Config.from_options(config, **options)
    if merged.metric == "instructions":  # counted under Valgrind, in a process of its own
        from .instructions import count_instructions

        return count_instructions(model, merged)
    if merged.processes > 1:
        if not isinstance(model, (str, os.PathLike)):
            with Session(model, merged.replace(processes=1)) as session:  # writes it to a file
                return measure_in_processes(session.model_path, merged)
        return measure_in_processes(model, merged)
    with Session(model, merged) as session:
        return session.measure()
