"""``inferspeed sweep``: a grid of configurations, each cell measured in its own worker
process, each result appended to a JSONL file as soon as it is measured.

On a decoder every cell measures whole generations (the metric "generation"); the prompt's and
the output's lengths are axes too (``prompt_tokens``, ``gen_tokens``), and the cells are then
ranked by the time per output token unless ``by`` says otherwise. ``streams`` is an axis of
load: each cell measures the offline scenario with that many streams (concurrency) sharing one
session, for a decoder each stream a generation loop with its own cache.

The file is the state: ``resume`` reads it, keeps the cells already there (a partial last line
left by a kill is cut off) and measures only the rest, so a sweep killed at any point and
resumed ends with every cell exactly once. The file's lines, and every read and write of it,
are :mod:`inferspeed.results.sweepfile`'s.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import ConfigError, InferspeedError, WorkerCrashed
from ..events import emit
from ..measure.spawn import run_in_process
from ..metrics import DEFAULT_METRIC, Ranking, metric_named, rankings
from ..results.sweepfile import Cell, SweepLine, append_line, cell_key, line_result, read_for_resume

__all__ = [
    "SweepResult",
    "cell_config",
    "grid_cells",
    "measure_cell",
    "ranking_for",
    "sweep",
    "sweep_metric",
]

#: The axes that are a generation's lengths: a grid with one measures generations.
LENGTH_AXES = ("prompt_tokens", "gen_tokens")

#: Grid axes and the Config field each sets. "dims" cells hold {symbol: size} (a symbol may
#: also be "input:axis"); "batch" sets the batch dim of every input that has one (a decoder's
#: generation batch); "prompt_tokens" and "gen_tokens" a decoder's prompt and output lengths;
#: "streams" the offline scenario's concurrency (the cell's scenario is then "offline").
AXES = {
    "threads": "threads",
    "opt_level": "graph_optimization",
    "mode": "mode",
    "cache": "cache",
    "dims": "dims",
    "batch": "batch",
    "prompt_tokens": "prompt_tokens",
    "gen_tokens": "gen_tokens",
    "streams": "concurrency",
}


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


def sweep_metric(base: Config, grid: Mapping[str, object]) -> str:
    """The metric whose rankings a sweep's ``by`` names: "generation" when the grid's axes hold
    a generation's lengths and ``base`` names the default metric (a decoder's cells measure
    generations under it), else ``base``'s."""
    if base.metric == DEFAULT_METRIC and any(axis in grid for axis in LENGTH_AXES):
        return "generation"
    return base.metric


def cell_config(base: Config, cell: Mapping[str, Any]) -> Config:
    changes = {AXES[name]: value for name, value in cell.items()}
    if "streams" in cell:  # K streams back to back: the offline scenario's concurrency
        changes["scenario"] = "offline"
    if "dims" in changes:
        changes["dims"] = {**dict(base.dims), **changes["dims"]}
    return base.replace(**changes)


def measure_cell(model: str, config: Config) -> dict[str, Any]:
    """One cell's measurement, as a cell's fresh process runs it: its Result's JSON form
    without the samples (a sweep keeps statistics only; a generation each generation's
    figures: :func:`~inferspeed.results.sweepfile.line_result`). What is measured follows the
    config's metric (:func:`~inferspeed.measure.benchmark.benchmark`)."""
    from ..measure.benchmark import benchmark

    return line_result(benchmark(model, config).to_dict())


def ranking_for(by: str | None, metric: str) -> Ranking:
    """The ranking called ``by`` of the metric called ``metric`` (None: the metric's first);
    ConfigError naming the rankings of each metric when it is not one of its own."""
    if by is None:
        return metric_named(metric).rankings[0]
    known = rankings()
    if by not in known:
        raise ConfigError(f"by must be one of {', '.join(known)}, got {by!r}")
    own = metric_named(metric).rankings
    found = next((r for r in own if r.name == by), None)
    if found is None:
        raise ConfigError(
            f"by={by!r} goes with metric={known[by][0].name!r}; metric={metric!r} ranks by "
            f"{', '.join(repr(r.name) for r in own)}"
        )
    return found


def _rank_key(line: SweepLine, ranking: Ranking) -> float:
    """A key that sorts the best cell first by ``ranking`` (per item of the cell's batch)."""
    return ranking.sort_key(line.value(ranking.path), line.batch)


@dataclass(frozen=True)
class SweepResult:
    """Every cell's line (``cell``, ``result`` without samples, or ``error``) in grid order,
    and the best by ``by`` (a ranking of :mod:`inferspeed.metrics`)."""

    entries: list[SweepLine]
    by: str
    measured: int  # cells measured by this call (the rest came from the file)

    @property
    def metric(self) -> str:
        """The metric the cells hold: the first measured cell's (a decoder's cells measure
        generations whatever the config's metric), else the one whose ranking ``by`` is."""
        measured = next((e.metric for e in self.entries if e.result is not None), None)
        return measured or rankings()[self.by][0].name

    @property
    def best(self) -> SweepLine | None:
        ranking = rankings()[self.by][1]
        ok = [e for e in self.entries if e.error is None]
        return min(ok, key=lambda e: _rank_key(e, ranking)) if ok else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "by": self.by,
            "best": None if best is None else dict(best.cell),
            "cells": [e.to_dict() for e in self.entries],
        }


def _cells_ranking(entries: Sequence[SweepLine], by: str) -> str:
    """The first ranking of the metric the cells measured when ``by`` (a default) is another
    metric's: a decoder's cells measure generations under the default metric, and rank by
    the time per output token."""
    measured = next((e.metric for e in entries if e.result is not None), None)
    if measured is None or measured == rankings()[by][0].name:
        return by
    return metric_named(measured).rankings[0].name


def _lines_done(path: str | None, resume: bool) -> dict[str, SweepLine]:
    """The lines already in the sweep's file, by cell, for a resume (none otherwise); ConfigError
    for a file that exists without ``resume``, or ``resume`` without a file."""
    if path is None and resume:
        raise ConfigError("resume needs the sweep's file (--out)")
    if path is not None and os.path.exists(path) and not resume:
        raise ConfigError(f"{path} exists: --resume to finish that sweep, or remove it")
    return {cell_key(line.cell): line for line in read_for_resume(path)} if path and resume else {}


def _measured_cell(model_path: str, cell: Cell, config: Config, stop: str) -> SweepLine:
    """One cell measured in a fresh process: its line (its result, or the error that ended it).
    Ctrl-C raises KeyboardInterrupt(``stop``); the cell's partial result is not kept, so a
    resumed sweep measures it again in full."""
    interrupted = False
    try:
        value, interrupted = run_in_process(measure_cell, model_path, config, what="the cell's process")
        line = SweepLine(cell, result=value)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(stop) from None
    except WorkerCrashed as exc:
        line = SweepLine(cell, error=f"crashed: {exc}", crashed=True, exitcode=exc.exitcode)
    except InferspeedError as exc:
        line = SweepLine(cell, error=str(exc))
    if interrupted:
        raise KeyboardInterrupt(stop)
    return line


def sweep(
    model: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]],
    out: str | os.PathLike[str] | None,
    *,
    config: Config | None = None,
    resume: bool = False,
    by: str | None = None,
    progress: Callable[[int, int, SweepLine], None] | None = None,
) -> SweepResult:
    """Measure every cell of ``grid`` of ``model``, each in a fresh process, appending each
    cell's line to the JSONL file ``out`` as soon as it is measured (None: no file).

    Parameters
    ----------
    model : str or os.PathLike
        The model file (a path: each cell's process opens it).
    grid : mapping
        The axes and their values: ``threads``, ``opt_level``, ``mode``, ``cache``, ``batch``,
        a decoder's ``prompt_tokens`` and ``gen_tokens``, ``streams`` (offline concurrency)
        each a list; ``dims`` a mapping of each symbol (or ``"input:axis"``) to its sizes
        (``{"seq": [128, 512]}``). Every combination is one cell (a value given twice, one).
    out : str, os.PathLike or None
        The JSONL file (:mod:`inferspeed.results.sweepfile`); it must not exist unless
        ``resume``. None: the cells are only returned (nothing to resume).
    config : Config, optional
        What every cell shares (inputs, loop limits, the metric); each cell replaces the fields
        of its axes. Every cell's configuration is checked before anything runs.
    resume : bool, default False
        Keep the cells already in ``out`` (a partial last line cut off) and measure the rest.
    by : str, optional
        What "best" means: a ranking of the config's metric (:mod:`inferspeed.metrics`:
        "median", "p99" or "throughput" for latency, "tpot", "ttft" or
        "output_tokens_per_s" for generation, "instructions" for counts); None: the first of
        the metric the cells measured (a decoder's: "tpot").
    progress : callable, optional
        Called after each cell with (cells done, cells in all, the cell's line).

    Returns
    -------
    SweepResult
        Every cell's line in grid order, the best by ``by``, how many this call measured.

    Raises
    ------
    ConfigError
        An unknown axis or ranking, a bad cell configuration, ``out`` existing without
        ``resume``, or ``resume`` without ``out``. A cell that fails is recorded with its
        ``error`` and the sweep goes on.
    KeyboardInterrupt
        On Ctrl-C, saying how many cells are in ``out`` (``resume`` finishes the sweep).
    """
    base = config or Config()
    given, by = by, ranking_for(by, sweep_metric(base, grid)).name
    path = None if out is None else os.fspath(out)
    model_path = os.fspath(model)
    cells = grid_cells(grid)
    for cell in cells:
        cell_config(base, cell)  # every cell's configuration is valid before anything runs
    done = _lines_done(path, resume)
    measured = 0
    for index, cell in enumerate(cells):
        key = cell_key(cell)
        if key in done:
            continue
        stop = (
            f"sweep interrupted: {len(done)} of {len(cells)} cells are in {path}; --resume finishes it"
            if path is not None
            else f"sweep interrupted after {len(done)} of {len(cells)} cells (--out keeps each cell)"
        )
        line = _measured_cell(model_path, cell, cell_config(base, cell), stop)
        if path is not None:
            append_line(path, line)
        emit("cell", index=index, cells=len(cells), error=line.error is not None)
        done[key] = line
        measured += 1
        if progress is not None:
            progress(index + 1, len(cells), line)
    entries = [done[cell_key(c)] for c in cells]
    return SweepResult(entries, by if given is not None else _cells_ranking(entries, by), measured)
