"""``inferspeed sweep``: a grid of configurations, each cell measured in its own worker
process, each result appended to a JSONL file as soon as it is measured.

The file is the state: ``resume`` reads it, keeps the cells already there (a partial last line
left by a kill is cut off) and measures only the rest, so a sweep killed at any point and
resumed ends with every cell exactly once.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import ConfigError, InferspeedError, WorkerCrashed
from ..events import emit
from ..measure.spawn import run_in_process
from ..results.result import batch_of

__all__ = ["SWEEP_METRICS", "SweepResult", "cell_key", "cell_label", "grid_cells", "sweep"]

#: Grid axes and the Config field each sets. "dims" cells hold {symbol: size} (a symbol may
#: also be "input:axis"); "batch" sets the batch dim of every input that has one.
AXES = {
    "threads": "threads",
    "opt_level": "graph_optimization",
    "mode": "mode",
    "cache": "cache",
    "dims": "dims",
    "batch": "batch",
}
SWEEP_METRICS = ("median", "p99", "throughput", "instructions")


def grid_cells(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in a stable order. ``grid["dims"]`` maps each
    symbol to its sizes (``{"seq": [128, 512]}``); the other axes are lists. A value given twice
    on one axis makes one cell, not two."""
    unknown = sorted(set(grid) - set(AXES))
    if unknown:
        raise ConfigError(f"unknown sweep axes: {', '.join(unknown)} (axes: {', '.join(AXES)})")
    axes: list[tuple[str, list[Any]]] = []
    for name, values in grid.items():
        if name == "dims":
            assert isinstance(values, Mapping)
            for symbol, sizes in values.items():
                axes.append((f"dim:{symbol}", list(dict.fromkeys(sizes))))
        else:
            axes.append((name, list(dict.fromkeys(values))))
    for name, values in axes:
        if not values:
            raise ConfigError(f"sweep axis {name} has no values")
    cells = []
    for combo in itertools.product(*(values for _, values in axes)):
        cell: dict[str, Any] = {}
        for (name, _), value in zip(axes, combo, strict=True):
            if name.startswith("dim:"):
                cell.setdefault("dims", {})[name[4:]] = value
            else:
                cell[name] = value
        cells.append(cell)
    return cells


def cell_key(cell: Mapping[str, Any]) -> str:
    return json.dumps(cell, sort_keys=True)


def cell_label(cell: Mapping[str, Any]) -> str:
    """How a cell reads in a message: ``threads=2, batch=8, seq=128`` (dims by their symbol)."""
    parts = []
    for name, value in cell.items():
        if name == "dims":
            parts += [f"{symbol}={size}" for symbol, size in value.items()]
        else:
            parts.append(f"{name}={value}")
    return ", ".join(parts)


def cell_config(base: Config, cell: Mapping[str, Any]) -> Config:
    changes = {AXES[name]: value for name, value in cell.items()}
    if "dims" in changes:
        changes["dims"] = {**dict(base.dims), **changes["dims"]}
    return base.replace(**changes)


def _measure_cell(model: str, config: Config) -> dict[str, Any]:
    """Runs in the worker process: one cell's result as JSON-ready data (without samples)."""
    from ..measure.session import Session

    if config.metric == "instructions":  # counted under Valgrind (a process of its own)
        from ..measure.instructions import count_instructions

        data = count_instructions(model, config).to_dict()
    else:
        with Session(model, config) as session:
            data = session.measure().to_dict()
    del data["samples_ns"]
    return data


def _read_done(path: str) -> dict[str, dict[str, Any]]:
    """Cells already in the file; a trailing partial line (a write cut by a kill) is removed."""
    done: dict[str, dict[str, Any]] = {}
    if not os.path.exists(path):
        return done
    with open(path, "rb") as f:
        data = f.read()
    good_end = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            entry = json.loads(line)
        except ValueError:
            break
        done[cell_key(entry["cell"])] = entry
        good_end += len(line)
    if good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return done


def _append(path: str, entry: Mapping[str, Any]) -> None:
    line = (json.dumps(entry, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of a whole line: a kill leaves it whole or partial
        os.fsync(fd)
    finally:
        os.close(fd)


def _metric(entry: Mapping[str, Any], by: str) -> float:
    stats = entry["result"]["stats"]
    batch = batch_of(entry["result"])
    if by == "instructions":  # per sample, fewer is better
        return float((entry["result"].get("instructions") or {}).get("instructions", float("inf"))) / batch
    if by == "throughput":
        return -(stats["throughput_per_s"] or 0.0) * batch  # samples/s, higher is better
    return float(stats["median_ns" if by == "median" else "p99_ns"]) / batch  # per sample


@dataclass(frozen=True)
class SweepResult:
    """Every cell's entry (``cell``, ``result`` without samples) in grid order, and the best."""

    entries: list[dict[str, Any]]
    by: str
    measured: int  # cells measured by this call (the rest came from the file)

    @property
    def best(self) -> dict[str, Any] | None:
        ok = [e for e in self.entries if "error" not in e]
        return min(ok, key=lambda e: _metric(e, self.by)) if ok else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"by": self.by, "best": None if best is None else best["cell"], "cells": self.entries}


def sweep(
    model: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]],
    out: str | os.PathLike[str],
    *,
    config: Config | None = None,
    resume: bool = False,
    by: str = "median",
    progress: Callable[[int, int, Mapping[str, Any]], None] | None = None,
) -> SweepResult:
    """Measure every cell of ``grid`` (axes: threads, opt_level, mode, cache, dims, batch) of
    ``model``, each in a fresh process, appending to the JSONL file ``out``. ``config`` holds
    what every cell shares (inputs, loop limits); each cell replaces the fields of its axes. A
    cell that fails is recorded with its ``error`` and the sweep goes on."""
    if by not in SWEEP_METRICS:
        raise ConfigError(f"by must be one of {', '.join(SWEEP_METRICS)}, got {by!r}")
    if (by == "instructions") != ((config or Config()).metric == "instructions"):
        raise ConfigError("by='instructions' goes with metric='instructions', and only with it")
    path = os.fspath(out)
    model_path = os.fspath(model)
    base = config or Config()
    cells = grid_cells(grid)
    for cell in cells:
        cell_config(base, cell)  # every cell's configuration is valid before anything runs
    if os.path.exists(path) and not resume:
        raise ConfigError(f"{path} exists: --resume to finish that sweep, or remove it")
    done = _read_done(path) if resume else {}
    measured = 0
    for index, cell in enumerate(cells):
        key = cell_key(cell)
        if key in done:
            continue
        interrupted = False
        stop = f"sweep interrupted: {len(done)} of {len(cells)} cells are in {path}; --resume finishes it"
        try:
            value, interrupted = run_in_process(
                _measure_cell, model_path, cell_config(base, cell), what="the cell's process"
            )
            entry: dict[str, Any] = {"cell": cell, "result": value}
        except KeyboardInterrupt:
            raise KeyboardInterrupt(stop) from None
        except WorkerCrashed as exc:
            entry = {"cell": cell, "error": f"crashed: {exc}", "crashed": True, "exitcode": exc.exitcode}
        except InferspeedError as exc:
            entry = {"cell": cell, "error": str(exc)}
        if interrupted:
            # The cell's partial result is not written: --resume measures it again in full.
            raise KeyboardInterrupt(stop)
        _append(path, entry)
        emit("cell", index=index, cells=len(cells), error="error" in entry)
        done[key] = entry
        measured += 1
        if progress is not None:
            progress(index + 1, len(cells), entry)
    return SweepResult([done[cell_key(c)] for c in cells], by, measured)


# What tools.cluster shares with the local sweep: one cell's measurement (for a fresh
# process), the file's cells (a partial last line cut off) and one line appended.
measure_cell = _measure_cell
read_done = _read_done
append_entry = _append
