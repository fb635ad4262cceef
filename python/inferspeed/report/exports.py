"""Results for other tools: a Markdown table, CSV, and pyperf's JSON format.

The summary row of a result (``summary_row``) is the same in Markdown and CSV: name, scenario,
samples, median with its 95% interval, p90, p99, p99.9, mean, throughput and warning codes;
times in nanoseconds in CSV, with units in Markdown.

pyperf (``to_pyperf``): one benchmark per result, with values in seconds. pyperf's
``compare_to`` pairs benchmarks by name, so a file of one result names it ``name`` (default
SINGLE_NAME; the model is in the benchmark's ``description``), and the files of two models, or
of one model before and after a change, compare; a file of several results names each after
its model and configuration. A pyperf value is the mean of ``loops`` consecutive calls, and pyperf's
significance test (``compare_to``) needs the same number of values on both sides; so a
result of at least PYPERF_VALUES samples becomes exactly PYPERF_VALUES values, each the mean
of ``loops`` = samples // PYPERF_VALUES consecutive calls (the remainder is left out), in
PYPERF_RUNS runs of consecutive values (as pyperf's worker processes would give). A shorter
result keeps one value per call (``loops`` 1). ``python -m pyperf stats``, ``hist`` and
``compare_to`` then work on the file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..results.result import Result
from ..units import format_duration

__all__ = [
    "PYPERF_RUNS",
    "PYPERF_VALUES",
    "summary_cells",
    "summary_row",
    "to_csv",
    "to_markdown",
    "to_pyperf",
    "write_pyperf",
]

PYPERF_RUNS = 20
#: The benchmark's name in a pyperf file of one result.
SINGLE_NAME = "latency"
PYPERF_VALUES = 1000

_COLUMNS = (
    "name", "scenario", "samples", "median_ns", "ci95_median_lo_ns", "ci95_median_hi_ns", "p90_ns",
    "p99_ns", "p999_ns", "mean_ns", "throughput_per_s", "warnings",
)  # fmt: skip


def result_name(result: Result) -> str:
    """The model's (or callable's) name, with the thread count when set and, under load, the
    scenario's rate and workers."""
    name = str(result.model.get("name", "?"))
    details = []
    if result.config.get("threads"):
        details.append(f"threads={result.config['threads']}")
    if result.scenario == "server" and result.scenario_stats.get("offered_qps"):
        details.append(f"server {result.scenario_stats['offered_qps']:g}/s")
    elif result.scenario == "offline":
        details.append("offline")
    if (result.config.get("concurrency") or 1) > 1:
        details.append(f"concurrency={result.config['concurrency']}")
    return f"{name} ({', '.join(details)})" if details else name


def throughput_of(result: Result) -> float | None:
    """Calls per second: achieved (server), all workers (offline), else one stream's."""
    sc = result.scenario_stats
    value = sc.get("achieved_qps") or sc.get("throughput_per_s") or result.stats.throughput_per_s
    return float(value) if value else None


def summary_row(result: Result) -> dict[str, Any]:
    s = result.stats
    lo, hi = s.ci95_median_ns
    return {
        "name": result_name(result),
        "scenario": result.scenario,
        "samples": s.count,
        "median_ns": s.median_ns,
        "ci95_median_lo_ns": lo,
        "ci95_median_hi_ns": hi,
        "p90_ns": s.p90_ns,
        "p99_ns": s.p99_ns,
        "p999_ns": s.p999_ns,
        "mean_ns": s.mean_ns,
        "throughput_per_s": throughput_of(result),
        "warnings": " ".join(w.code for w in result.warnings),
    }


def to_csv(results: Sequence[Result]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow(summary_row(r))
    return out.getvalue()


def summary_cells(result: Result) -> dict[str, str]:
    """The summary row with units, by column title, as the Markdown and HTML tables show it."""
    row = summary_row(result)
    lo, hi = row["ci95_median_lo_ns"], row["ci95_median_hi_ns"]
    ci = f" ({format_duration(lo)}–{format_duration(hi)})" if lo is not None and hi is not None else ""
    tput = row["throughput_per_s"]
    return {
        "model": row["name"],
        "scenario": row["scenario"],
        "samples": str(row["samples"]),
        "median (95% CI)": format_duration(row["median_ns"]) + ci,
        "p90": format_duration(row["p90_ns"]),
        "p99": format_duration(row["p99_ns"]),
        "p99.9": format_duration(row["p999_ns"]),
        "throughput": "" if tput is None else f"{tput:,.0f}/s",
        "warnings": row["warnings"] or "-",
    }


def to_markdown(results: Sequence[Result]) -> str:
    head = "| model | scenario | samples | median (95% CI) | p90 | p99 | p99.9 | throughput | warnings |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        cells = summary_cells(r)
        cells["model"] = cells["model"].replace("|", "/")
        lines.append("| " + " | ".join(cells.values()) + " |")
    return "\n".join(lines) + "\n"


def _benchmark(result: Result, name: str) -> dict[str, Any]:
    x = result.samples_ns.astype(np.float64)
    loops = max(1, x.size // PYPERF_VALUES)
    if x.size >= PYPERF_VALUES:
        x = x[: PYPERF_VALUES * loops].reshape(PYPERF_VALUES, loops).mean(axis=1)
    runs_n = max(1, min(PYPERF_RUNS, x.size // 2))
    date = str(result.environment.get("start_time", "")).replace("T", " ")[:19] or None
    runs = []
    for part in np.array_split(x / 1e9, runs_n):
        meta: dict[str, Any] = {"loops": loops}
        if date:
            meta["date"] = date
        runs.append({"metadata": meta, "values": [float(v) for v in part]})
    meta = {
        "name": name,
        "unit": "second",
        "loops": loops,
        "description": f"inferspeed: {result_name(result)}",
    }
    cpu = result.environment.get("cpu", {})
    if cpu.get("model"):
        meta["cpu_model_name"] = str(cpu["model"])
    if cpu.get("logical_cores"):
        meta["cpu_count"] = int(cpu["logical_cores"])
    return {"metadata": meta, "runs": runs}


def to_pyperf(results: Sequence[Result], name: str | None = None) -> dict[str, Any]:
    """pyperf's JSON document (version 1.0) of ``results`` (see the module's docstring)."""
    if len(results) == 1:
        return {"version": "1.0", "metadata": {}, "benchmarks": [_benchmark(results[0], name or SINGLE_NAME)]}
    names: dict[str, int] = {}
    benchmarks = []
    for r in results:
        name = result_name(r)
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name} #{names[name]}"
        benchmarks.append(_benchmark(r, name))
    return {"version": "1.0", "metadata": {}, "benchmarks": benchmarks}


def write_pyperf(results: Sequence[Result], path: str | os.PathLike[str], name: str | None = None) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_pyperf(results, name), f)
