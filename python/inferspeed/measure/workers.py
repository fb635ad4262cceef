"""Measurements repeated in fresh worker processes and pooled (``processes`` > 1).

Each repetition runs in a new process (multiprocessing "spawn": nothing inherited from this
one), so memory layout, allocator state and address-space randomisation differ between them, as
they do between runs of an application. The pooled result carries every sample, statistics of
the pool, and the spread between the processes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..config import Config
from ..errors import WorkerCrashed
from ..results.result import BenchmarkInterrupted, Result, compute_at, max_memory
from ..stats.diagnostics import Diagnostic
from ..stats.summary import summarize
from .processes import run_in_process
from .session import Session

__all__ = ["PROCESS_SPREAD", "measure_in_processes"]

#: Medians of separate processes further apart than this (relative to the pooled median) get
#: a warning: more than the few percent layout effects usually cause.
PROCESS_SPREAD = 0.05


def _worker(model_path: str, config: Config) -> tuple[dict[str, Any], np.ndarray]:
    """Runs in the worker: one measurement; the result as a dict plus its samples."""
    try:
        with Session(model_path, config) as session:
            result = session.measure()
    except BenchmarkInterrupted as exc:
        result = exc.result
    data = result.to_dict()
    del data["samples_ns"]
    data["environment"] = dict(result.environment)
    return data, result.samples_ns


def measure_in_processes(model: str | os.PathLike[str], config: Config) -> Result:
    """Measure ``model`` ``config.processes`` times, each in a fresh process, one after the
    other, and pool the samples. Raises BenchmarkInterrupted (with what was pooled) on Ctrl-C."""
    path = os.fspath(model)
    # Check the model and inputs here first, so errors read the same as without workers.
    with Session(path, config.replace(processes=1)) as probe:
        model_info = probe.model_info()
        notices = probe.notices
    worker_config = config.replace(processes=1)
    runs: list[tuple[dict[str, Any], np.ndarray]] = []
    crashed: list[str] = []
    interrupted = False
    for index in range(config.processes):
        what = f"worker process {index + 1} of {config.processes}"
        try:
            value, interrupted = run_in_process(_worker, path, worker_config, what=what)
        except WorkerCrashed as exc:
            crashed.append(str(exc))  # the others still measure
            continue
        runs.append(value)
        if interrupted or runs[-1][0]["interrupted"]:
            interrupted = True
            break
    if not runs:
        raise WorkerCrashed("every worker process crashed: " + "; ".join(crashed))
    result = _pool(runs, config, model_info, notices, interrupted, crashed)
    if interrupted:
        raise BenchmarkInterrupted(result)
    return result


def _pool(
    runs: list[tuple[dict[str, Any], np.ndarray]],
    config: Config,
    model_info: dict[str, Any],
    notices: tuple[str, ...],
    interrupted: bool,
    crashed: list[str] | None = None,
) -> Result:
    samples = np.concatenate([s for _, s in runs])
    first = runs[0][0]
    stats = summarize(samples, first["stats"]["timer_overhead_ns"], drop_outliers=config.drop_outliers)
    medians = np.array([d["stats"]["median_ns"] for d, _ in runs])
    spread = float((medians.max() - medians.min()) / stats.median_ns) if stats.median_ns > 0 else 0.0
    per_process = [
        {
            "pid_index": i,
            "count": d["stats"]["count"],
            "median_ns": d["stats"]["median_ns"],
            "ci95_median_ns": d["stats"]["ci95_median_ns"],
            "p99_ns": d["stats"]["p99_ns"],
            "warnings": [w["code"] for w in d["warnings"]],
        }
        for i, (d, _) in enumerate(runs)
    ]
    warnings: dict[str, Diagnostic] = {}
    counts: dict[str, int] = {}
    for d, _ in runs:
        for w in d["warnings"]:
            counts[w["code"]] = counts.get(w["code"], 0) + 1
            warnings.setdefault(w["code"], Diagnostic(w["code"], w["message"], w["details"]))
    pooled_warnings = [
        Diagnostic(w.code, f"In {counts[code]} of {len(runs)} processes: {w.message}", w.details)
        for code, w in warnings.items()
    ]
    if crashed:
        pooled_warnings.append(
            Diagnostic(
                "worker_crashed",
                f"{len(crashed)} of {len(crashed) + len(runs)} worker processes crashed "
                f"({'; '.join(crashed)}); the figures pool the others",
                {"crashed": list(crashed)},
            )
        )
    if spread > PROCESS_SPREAD:
        pooled_warnings.append(
            Diagnostic(
                "process_spread",
                f"the median differed by {spread:.1%} between processes ({medians.min() / 1e3:.2f} to "
                f"{medians.max() / 1e3:.2f} µs): memory layout or the machine changed between them; "
                "use more processes and read the pooled figures with that spread in mind",
                {"medians_ns": medians.tolist(), "spread": spread},
            )
        )
    return Result(
        samples_ns=samples,
        stats=stats,
        model=model_info,
        config=config.to_dict(),
        environment=first["environment"],
        session=first["session"],
        warmup={
            **first["warmup"],  # the cold start is the first process's
            "iterations": sum(d["warmup"]["iterations"] for d, _ in runs),
            "time_ns": sum(d["warmup"]["time_ns"] for d, _ in runs),
        },
        # Each process measured its own memory: the largest of each figure.
        memory=max_memory([d.get("memory") for d, _ in runs]),
        compute=compute_at(first.get("compute"), stats.median_ns),
        loop={**first["loop"], "other_load_cores": None},
        stopping=None,
        warnings=tuple(pooled_warnings),
        interrupted=interrupted,
        notices=notices,
        processes={
            "count": len(runs),
            "medians_ns": medians.tolist(),
            "median_spread": spread,
            "median_cv": float(medians.std(ddof=1) / medians.mean()) if len(runs) > 1 else 0.0,
            "per_process": per_process,
            "crashed": list(crashed or []),
        },
    )
