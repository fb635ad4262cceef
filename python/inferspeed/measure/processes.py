"""Measurements repeated in fresh worker processes and pooled (``processes`` > 1).

Each repetition runs in a new process (multiprocessing "spawn": nothing inherited from this
one), so memory layout, allocator state and address-space randomisation differ between them, as
they do between runs of an application. The pooled result carries every sample, statistics of
the pool, and the spread between the processes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import Config
from ..errors import BenchmarkInterrupted, WorkerCrashed
from ..results.pool import pool_results
from ..results.result import Result
from ..stats.diagnostics import Diagnostic
from .history import machine_history, parts_of_one_run, remember
from .session import Session
from .spawn import run_in_process

__all__ = ["PROCESS_SPREAD", "measure_in_processes"]

#: Medians of separate processes further apart than this (relative to the pooled median) get
#: a warning: more than the few percent layout effects usually cause.
PROCESS_SPREAD = 0.05


def _worker(model_path: str, config: Config) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """Runs in the worker: one measurement, as its JSON entry, its environment and its samples
    (a Result does not pickle: its warnings' details are read-only mappings)."""
    try:
        with Session(model_path, config) as session, parts_of_one_run():
            result = session.measure()
    except BenchmarkInterrupted as exc:
        result = exc.result
    data = result.to_dict()
    del data["samples_ns"]
    return data, dict(result.environment), result.samples_ns


def measure_in_processes(model: str | os.PathLike[str], config: Config) -> Result:
    """Measure ``model`` ``config.processes`` times, each in a fresh process, one after the
    other, and pool the samples. Raises BenchmarkInterrupted (with what was pooled) on Ctrl-C."""
    path = os.fspath(model)
    # Check the model and inputs here first, so errors read the same as without workers.
    with Session(path, config.replace(processes=1)) as probe:
        model_info = probe.model_info()
        notices = probe.notices
    worker_config = config.replace(processes=1)
    parts: list[Result] = []
    crashed: list[str] = []
    interrupted = False
    for index in range(config.processes):
        what = f"worker process {index + 1} of {config.processes}"
        try:
            (data, environment, samples), interrupted = run_in_process(
                _worker, path, worker_config, what=what
            )
        except WorkerCrashed as exc:
            crashed.append(str(exc))  # the others still measure
            continue
        parts.append(Result.from_dict({**data, "samples_ns": samples}, environment))
        if interrupted or parts[-1].interrupted:
            interrupted = True
            break
    if not parts:
        raise WorkerCrashed("every worker process crashed: " + "; ".join(crashed))
    result = _pool(parts, config, model_info, notices, interrupted, crashed)
    if interrupted:
        raise BenchmarkInterrupted(result)
    remember(machine_history(), result, "processes")
    return result


def _pool(
    parts: Sequence[Result],
    config: Config,
    model_info: dict[str, Any],
    notices: tuple[str, ...],
    interrupted: bool,
    crashed: Sequence[str] = (),
) -> Result:
    """The processes' measurements pooled, with each process's figures and the spread of their
    medians, and their warnings counted over the processes."""
    # Each process measured its own memory: the largest of each figure.
    pooled = pool_results(parts, memory_keys=None)
    medians = np.array([p.stats.median_ns for p in parts])
    median = pooled.stats.median_ns
    spread = float((medians.max() - medians.min()) / median) if median > 0 else 0.0
    return dataclasses.replace(
        pooled,
        model=model_info,
        config=config.to_dict(),
        # A load scenario's rates and queue statistics do not pool across processes: none is
        # reported, and the pooled result is labelled as the closed loop's.
        scenario="single-stream",
        scenario_stats={},
        loop={**parts[0].loop, "other_load_cores": None},
        stopping=None,
        warnings=tuple(_process_warnings(parts, medians, spread, crashed)),
        interrupted=interrupted,
        notices=notices,
        processes={
            "count": len(parts),
            "medians_ns": medians.tolist(),
            "median_spread": spread,
            "median_cv": float(medians.std(ddof=1) / medians.mean()) if len(parts) > 1 else 0.0,
            "per_process": [_process_figures(i, p) for i, p in enumerate(parts)],
            "crashed": list(crashed),
        },
    )


def _process_figures(index: int, part: Result) -> dict[str, Any]:
    """One process's entry of ``processes.per_process``."""
    s = part.stats
    return {
        "pid_index": index,
        "count": s.count,
        "median_ns": s.median_ns,
        "ci95_median_ns": list(s.ci95_median_ns),
        "p99_ns": s.p99_ns,
        "warnings": [w.code for w in part.warnings],
    }


def _process_warnings(
    parts: Sequence[Result], medians: np.ndarray, spread: float, crashed: Sequence[str]
) -> list[Diagnostic]:
    """Each process's warnings once, saying in how many processes they were seen; crashed
    processes; medians that differ more between processes than layout effects explain."""
    first_seen: dict[str, Diagnostic] = {}
    counts: dict[str, int] = {}
    for p in parts:
        for w in p.warnings:
            counts[w.code] = counts.get(w.code, 0) + 1
            first_seen.setdefault(w.code, w)
    found = [
        Diagnostic(w.code, f"In {counts[code]} of {len(parts)} processes: {w.message}", w.details)
        for code, w in first_seen.items()
    ]
    if crashed:
        found.append(
            Diagnostic(
                "worker_crashed",
                f"{len(crashed)} of {len(crashed) + len(parts)} worker processes crashed "
                f"({'; '.join(crashed)}); the figures pool the others",
                {"crashed": list(crashed)},
            )
        )
    if spread > PROCESS_SPREAD:
        found.append(
            Diagnostic(
                "process_spread",
                f"the median differed by {spread:.1%} between processes ({medians.min() / 1e3:.2f} to "
                f"{medians.max() / 1e3:.2f} µs): memory layout or the machine changed between them; "
                "use more processes and read the pooled figures with that spread in mind",
                {"medians_ns": medians.tolist(), "spread": spread},
            )
        )
    return found
