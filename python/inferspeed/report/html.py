"""Pictures of results: one self-contained HTML file (every plot an embedded PNG, no scripts,
no network) and the same plots as PNG files. Needs matplotlib (``pip install
'inferspeed[plot]'``); plots are drawn on ``matplotlib.figure.Figure`` objects, without pyplot
or a GUI backend.

What is drawn, by input:

- every latency result: a histogram (up to p99.9; the rest counted in the title), the CDF with
  p50/p90/p99/p99.9 marked (log x when the samples span more than 10x), and latency over the
  iteration index (each point a call, at most MAX_POINTS, with the median of each of 50
  consecutive blocks drawn over it: drift and throttling show there);
- a file of several results of one model (``--concurrency`` lists, server rates): p50 and p99
  against achieved throughput;
- a capacity search: the SLO percentile against achieved throughput, with the SLO;
- a trade-off: speedup (with its interval) against relative L2 error, the Pareto front joined;
- a profile: the share of model time of the top operator types and nodes;
- a decoder's generations: the latency of each step by its position, TTFT and TPOT; its
  generation requests under load (server, offline): each request's TTFT and TPOT, the
  inter-token latency by position and the output tokens/s over the run.

Each result has its block: its label (unique in the report), its facts (date, machine, ONNX
Runtime, threads, configuration, input shapes: ``exports.result_facts``), its warnings in
words, and its plots. A sweep's cells have no samples, so no plots of their own: their section
has the table of cells and the failed cells with their errors. A sweep of a decoder's
generations has its tokens/s table instead (llama-bench's ``pp{P}`` and ``tg{G}``, each ± SD
over the generations, TTFT, TPOT) and one plot: prompt and output tokens/s (± SD) and TPOT
against the context length (prompt + output) of each cell, a line for each setting of the
other axes.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis.capacity import CapacityResult
from ..errors import ConfigError
from ..results.result import Result
from ..results.sweepfile import TokenRates, cell_label
from ..stats.generation_requests import is_load, position_medians, request_figures, tokens_over_time
from ..tools.tradeoff import TradeoffResult
from ..units import format_duration
from .exports import (
    GENERATION_SWEEP_NOTES,
    AnyResult,
    Entry,
    FailedCell,
    generation_table,
    label_entries,
    result_facts,
    result_rates,
    summary_table,
    throughput_of,
    warning_lines,
)

__all__ = [
    "MAX_POINTS",
    "Block",
    "Plot",
    "Section",
    "gate_section",
    "plots_for",
    "render_html",
    "require_matplotlib",
    "write_pngs",
]

MAX_POINTS = 20_000
_BLOCKS = 50
_DPI = 100


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'inferspeed[plot]'") from None


@dataclass
class Plot:
    """One figure, rendered to PNG bytes."""

    slug: str
    title: str
    png: bytes


@dataclass
class Block:
    """One result: its label, its facts (name, text), its warnings in words and its plots."""

    label: str
    facts: list[tuple[str, str]]
    warnings: list[str]
    plots: list[Plot] = field(default_factory=list)


@dataclass
class Section:
    """A heading, notes, an optional table (rows of cells, the head first), a block per
    result, and plots of the whole section."""

    title: str
    table: list[list[str]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    results: list[Block] = field(default_factory=list)

    @property
    def all_plots(self) -> list[Plot]:
        return [p for b in self.results for p in b.plots] + self.plots


def _figure(width: float = 7.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _title(ax: Any, text: str) -> None:
    """A title that wraps instead of running off the figure."""
    import textwrap

    ax.set_title(textwrap.fill(text, 75), fontsize=10)


def _us(x: np.ndarray | float) -> Any:
    return np.asarray(x, dtype=np.float64) / 1e3


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "plot"


def _latency_plots(r: Result, label: str) -> list[Plot]:
    x = r.samples_ns.astype(np.float64)
    s = r.stats
    plots = []
    # Histogram, up to p99.9.
    fig = _figure()
    ax = fig.add_subplot()
    cut = s.p999_ns if s.p999_ns > s.min_ns else s.max_ns
    inside = x[x <= cut]
    ax.hist(_us(inside), bins=min(100, max(10, inside.size // 20)), color="#3b75af")
    ax.axvline(
        _us(s.median_ns), color="#d62728", linestyle="--", label=f"median {format_duration(s.median_ns)}"
    )
    ax.set_xlabel("latency (µs)")
    ax.set_ylabel("calls")
    beyond = x.size - inside.size
    _title(ax, f"{label}: histogram")
    if beyond:
        note = f"{beyond} call{'s' if beyond > 1 else ''} above p99.9 not shown"
        ax.text(0.01, 0.97, note, transform=ax.transAxes, va="top", fontsize=8, color="#555555")
    ax.legend(loc="upper right")
    plots.append(Plot(_slug(f"{label}-histogram"), f"{label}: histogram", _png(fig)))
    # CDF with the tail percentiles.
    fig = _figure()
    ax = fig.add_subplot()
    xs = np.sort(x)
    step = max(1, xs.size // MAX_POINTS)
    xs_plot = xs[::step]
    ys = (np.arange(xs.size)[::step] + 1) / xs.size
    ax.plot(_us(xs_plot), ys, color="#3b75af")
    if xs[0] > 0 and xs[-1] / xs[0] > 10:
        ax.set_xscale("log")
    for name, value, color in (
        ("p50", s.median_ns, "#2ca02c"),
        ("p90", s.p90_ns, "#ff7f0e"),
        ("p99", s.p99_ns, "#d62728"),
        ("p99.9", s.p999_ns, "#9467bd"),
    ):
        ax.axvline(
            _us(value), color=color, linestyle="--", linewidth=1, label=f"{name} {format_duration(value)}"
        )
    ax.set_xlabel("latency (µs)")
    ax.set_ylabel("fraction of calls")
    _title(ax, f"{label}: cumulative distribution")
    ax.legend(loc="lower right")
    plots.append(Plot(_slug(f"{label}-cdf"), f"{label}: CDF", _png(fig)))
    # Latency over the iteration index.
    fig = _figure()
    ax = fig.add_subplot()
    idx = np.arange(x.size)
    step = max(1, x.size // MAX_POINTS)
    ax.plot(idx[::step], _us(x[::step]), ".", markersize=1.5, color="#3b75af", alpha=0.5, label="calls")
    blocks = min(_BLOCKS, x.size)
    size = x.size // blocks
    if size >= 1:
        med = np.median(x[: size * blocks].reshape(blocks, size), axis=1)
        ax.plot((np.arange(blocks) + 0.5) * size, _us(med), color="#d62728", label="block median")
    ax.set_ylim(0, float(_us(s.p999_ns)) * 1.2 if s.p999_ns > 0 else None)
    ax.set_xlabel("iteration" if r.scenario == "single-stream" else "request")
    ax.set_ylabel("latency (µs)")
    _title(ax, f"{label}: latency over the run")
    ax.legend(loc="upper right")
    plots.append(Plot(_slug(f"{label}-timeline"), f"{label}: latency over the run", _png(fig)))
    return plots


def _generation_plots(g: Mapping[str, Any], label: str) -> list[Plot]:
    """A decoder's generations: each step's latency by its position (every generation's dots,
    the median over them, the positions called out), and the distributions of TTFT and of
    the time per output token."""
    steps = np.asarray(g.get("step_ns") or [], dtype=np.float64)
    if steps.ndim != 2 or steps.shape[1] < 2:
        return []
    plots = []
    fig = _figure()
    ax = fig.add_subplot()
    decode = np.where(steps[:, 1:] >= 0, steps[:, 1:], np.nan)
    positions = np.arange(1, steps.shape[1])
    for row in decode[:: max(1, decode.shape[0] // 50)]:
        ax.plot(positions, _us(row), ".", markersize=1.5, color="#3b75af", alpha=0.3)
    curve = np.asarray(
        [np.nan if v is None else v for v in g.get("position_median_ns") or []], dtype=np.float64
    )
    if curve.size == steps.shape[1]:
        ax.plot(positions, _us(curve[1:]), color="#d62728", label="median over generations")
    for p in (g.get("off_curve") or {}).get("positions") or []:
        ax.axvline(p["position"], color="#ff7f0e", linestyle=":", linewidth=1)
    top = np.nanpercentile(decode, 99.5) if np.isfinite(decode).any() else None
    ax.set_ylim(0, float(_us(top)) * 1.3 if top else None)
    ax.set_xlabel(f"decode step (reads position {g.get('prompt_tokens', 0)} + step - 1)")
    ax.set_ylabel("call (µs)")
    _title(ax, f"{label}: latency by position (slow positions dotted)")
    ax.legend(loc="upper left")
    plots.append(Plot(_slug(f"{label}-positions"), f"{label}: latency by position", _png(fig)))
    fig = _figure()
    ttft_ax, tpot_ax = fig.subplots(1, 2)
    sampling = np.asarray(g.get("sample_ns") or [], dtype=np.float64)
    first = steps[:, 0] >= 0
    ttft = steps[first, 0] + (np.maximum(sampling[first, 0], 0) if sampling.shape == steps.shape else 0)
    tpot = decode[np.isfinite(decode)]
    for ax, values, name in ((ttft_ax, ttft, "TTFT (ms)"), (tpot_ax, tpot, "time per output token (µs)")):
        scale = 1e6 if name.startswith("TTFT") else 1e3
        inside = values[values <= np.percentile(values, 99.9)] if values.size else values
        ax.hist(inside / scale, bins=min(60, max(5, inside.size // 10)), color="#3b75af")
        if values.size:
            ax.axvline(np.median(values) / scale, color="#d62728", linestyle="--", label="median")
        ax.set_xlabel(name)
        ax.set_ylabel("generations" if name.startswith("TTFT") else "tokens")
    _title(ttft_ax, f"{label}: TTFT")
    _title(tpot_ax, f"{label}: TPOT (to p99.9)")
    plots.append(Plot(_slug(f"{label}-ttft-tpot"), f"{label}: TTFT and TPOT", _png(fig)))
    return plots


def _hist(ax: Any, values: np.ndarray, scale: float, name: str, counted: str) -> None:
    """A histogram of ``values`` (ns) to their p99.9, in ``scale`` ns a unit, median dashed."""
    inside = values[values <= np.percentile(values, 99.9)] if values.size else values
    ax.hist(inside / scale, bins=min(60, max(5, inside.size // 10)), color="#3b75af")
    if values.size:
        ax.axvline(np.median(values) / scale, color="#d62728", linestyle="--", label="median")
    ax.set_xlabel(name)
    ax.set_ylabel(counted)


def _load_plots(g: Mapping[str, Any], label: str) -> list[Plot]:
    """A decoder's generation requests under load (server or offline): the distributions of
    each completed request's TTFT (from its scheduled arrival, or offline its start) and TPOT,
    the inter-token latency by the token's position (every request's dots, the median over
    them), and the output tokens/s over the run."""
    figures = request_figures(g)
    if figures["tpot"].size == 0:
        return []
    plots = []
    fig = _figure(10.0, 3.6)
    ttft_ax, tpot_ax = fig.subplots(1, 2)
    since = "start" if g.get("ttft_from") == "start" else "scheduled arrival"
    _hist(ttft_ax, figures["ttft"].astype(np.float64), 1e6, f"TTFT from the {since} (ms)", "requests")
    _hist(tpot_ax, figures["tpot"].astype(np.float64), 1e3, "TPOT per request (µs)", "requests")
    _title(ttft_ax, f"{label}: TTFT ({figures['ttft'].size} requests)")
    _title(tpot_ax, f"{label}: TPOT per request (to p99.9)")
    plots.append(Plot(_slug(f"{label}-requests-ttft-tpot"), f"{label}: TTFT and TPOT per request", _png(fig)))
    tokens = np.asarray(g.get("token_ns") or [], dtype=np.float64)[figures["index"]]
    fig = _figure()
    ax = fig.add_subplot()
    gaps = np.diff(tokens, axis=1)
    positions = np.arange(1, tokens.shape[1])
    for row in gaps[:: max(1, gaps.shape[0] // 50)]:
        ax.plot(positions, _us(row), ".", markersize=1.5, color="#3b75af", alpha=0.3)
    ax.plot(positions, _us(position_medians(g)), color="#d62728", label="median over requests")
    ax.set_ylim(0, float(_us(np.percentile(gaps, 99.5))) * 1.3 if gaps.size else None)
    ax.set_xlabel("output token (its gap from the token before it)")
    ax.set_ylabel("inter-token latency (µs)")
    _title(ax, f"{label}: inter-token latency by position")
    ax.legend(loc="upper left")
    plots.append(
        Plot(_slug(f"{label}-itl-positions"), f"{label}: inter-token latency by position", _png(fig))
    )
    at, rate = tokens_over_time(g)
    if at.size:
        fig = _figure()
        ax = fig.add_subplot()
        ax.plot(at, rate, "-", color="#3b75af")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("seconds after the start")
        ax.set_ylabel("output tokens/s (all streams)")
        _title(ax, f"{label}: output tokens/s over the run ({g.get('streams')} streams)")
        plots.append(
            Plot(_slug(f"{label}-tokens-over-time"), f"{label}: output tokens/s over the run", _png(fig))
        )
    return plots


#: The settings of a load (and of a run's length) that a throughput-latency curve runs over;
#: results alike in every other setting, of one model, make one curve.
_LOAD_SETTINGS = frozenset(
    ("scenario", "qps", "concurrency", "arrival", "duration", "deadline", "scheduler_spin",
     "max_time", "iterations", "warmup_time", "warmup_iterations")
)  # fmt: skip


def _curves(results: Sequence[AnyResult]) -> list[list[AnyResult]]:
    """The results that make a throughput-latency curve: of one model (by what it computes),
    alike but for the load, at two loads or more (each load once); never a line through two
    models or two configurations."""
    groups: dict[str, list[AnyResult]] = {}
    for r in results:
        m = r.model
        model = m.get("graph_sha256") or m.get("sha256") or m.get("path") or m.get("name")
        rest = {k: v for k, v in r.config.items() if k not in _LOAD_SETTINGS}
        groups.setdefault(json.dumps([model, rest], sort_keys=True, default=str), []).append(r)
    curves = []
    for group in groups.values():
        loads = {(r.scenario, r.config.get("qps"), r.config.get("concurrency")) for r in group}
        if len(group) > 1 and len(loads) == len(group):
            curves.append(group)
    return curves


def _curve_plot(results: Sequence[AnyResult], label: str) -> Plot | None:
    """p50 and p99 of one model's results (:func:`_curves`) against achieved throughput;
    against concurrency when the throughput hardly changes (a server at one offered rate)."""
    points = [
        (tp, r.stats.median_ns, r.stats.p99_ns) for r in results if (tp := throughput_of(r)) is not None
    ]
    if len(points) < 2:
        return None
    xlabel = "achieved throughput (calls/s)"
    spread = (
        max(p[0] for p in points) / min(p[0] for p in points) - 1.0 if min(p[0] for p in points) > 0 else 0
    )
    if spread < 0.1:
        points = [
            (float(r.config.get("concurrency") or 1), r.stats.median_ns, r.stats.p99_ns) for r in results
        ]
        xlabel = "concurrency (workers)"
    points.sort()
    t, p50, p99 = (np.array(v, dtype=np.float64) for v in zip(*points, strict=True))
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(t, _us(p50), "o-", label="p50")
    ax.plot(t, _us(p99), "s-", label="p99")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("latency (µs)")
    _title(ax, f"{label}: latency against throughput")
    ax.legend()
    return Plot(_slug(f"{label}-throughput-latency"), f"{label}: throughput–latency", _png(fig))


def _capacity_plot(found: CapacityResult, label: str) -> Plot | None:
    steps = [s for s in found.steps if s.get("achieved_qps")]
    if not steps:
        return None
    steps.sort(key=lambda s: s["achieved_qps"])
    fig = _figure()
    ax = fig.add_subplot()
    q = [s["achieved_qps"] for s in steps]
    lat = [s["latency_ns"] / 1e3 for s in steps]
    colors = ["#2ca02c" if s.get("passed") else "#d62728" for s in steps]
    ax.plot(q, lat, "-", color="#777777")
    ax.scatter(q, lat, c=colors, zorder=3)
    ax.axhline(found.slo_ns / 1e3, color="#d62728", linestyle="--", label=f"SLO p{found.percentile:g}")
    ax.set_xlabel("achieved throughput (requests/s)")
    ax.set_ylabel(f"p{found.percentile:g} latency (µs)")
    _title(ax, f"{label}: capacity search (green: met the SLO)")
    ax.legend()
    return Plot(_slug(f"{label}-capacity"), f"{label}: capacity", _png(fig))


def _tradeoff_plot(found: TradeoffResult, label: str) -> Plot:
    rows = found.rows
    fig = _figure()
    ax = fig.add_subplot()
    for row in rows:
        err = float(row["fidelity"]["relative_l2_error"])
        lo, hi = row.get("speedup_ci") or [row["speedup"], row["speedup"]]
        ax.errorbar(
            [max(err, 1e-12)],
            [row["speedup"]],
            yerr=[[row["speedup"] - lo], [hi - row["speedup"]]],
            fmt="o",
            color="#d62728" if row.get("pareto") else "#3b75af",
            capsize=3,
        )
        ax.annotate(
            str(row["label"]), (max(err, 1e-12), row["speedup"]), textcoords="offset points", xytext=(5, 5)
        )
    front = sorted((r for r in rows if r.get("pareto")), key=lambda r: r["fidelity"]["relative_l2_error"])
    if len(front) > 1:
        ax.plot(
            [max(float(r["fidelity"]["relative_l2_error"]), 1e-12) for r in front],
            [r["speedup"] for r in front],
            "--",
            color="#d62728",
            label="Pareto front",
        )
        ax.legend()
    ax.set_xscale("symlog", linthresh=1e-6)
    ax.set_xlabel("relative L2 error of the outputs (vs base)")
    ax.set_ylabel("speedup over base (x)")
    _title(ax, f"{label}: speed against fidelity (red: Pareto-optimal)")
    return Plot(_slug(f"{label}-tradeoff"), f"{label}: trade-off", _png(fig))


def _profile_plots(r: Result, label: str, top: int = 15) -> list[Plot]:
    pr = r.profile or {}
    plots = []
    for key, name in (("by_op_type", "op_type"), ("by_node", "node")):
        rows = [row for row in pr.get(key, [])[:top] if row.get("share") is not None]
        if not rows:
            continue
        fig = _figure(7.0, 0.35 * len(rows) + 1.4)
        ax = fig.add_subplot()
        names = [str(row[name])[-40:] for row in rows]
        shares = [100.0 * float(row["share"]) for row in rows]
        colors = ["#3b75af"] * len(rows)
        outside, model_time = pr.get("outside_nodes_us"), pr.get("model_time_us")
        if key == "by_op_type" and outside is not None and model_time:
            names.append("(ORT run outside the nodes)")
            shares.append(100.0 * float(outside) / float(model_time))
            colors.append("#999999")
        ax.barh(names[::-1], shares[::-1], color=colors[::-1])
        ax.set_xlabel("share of the profiled model time (%)")
        what = "operator types" if key == "by_op_type" else "nodes"
        _title(ax, f"{label}: top {len(rows)} {what}")
        plots.append(Plot(_slug(f"{label}-profile-{key}"), f"{label}: profile by {what}", _png(fig)))
    return plots


#: The axes of a generation sweep that make its context length; the others make its lines.
_LENGTH_AXES = ("prompt_tokens", "gen_tokens")


def _context_series(entries: Sequence[Entry]) -> dict[str, list[TokenRates]]:
    """The generation sweep cells of ``entries`` by the setting of their other axes (the name
    of a line: those axes, or "" when the lengths are the only axes), each sorted by context."""
    series: dict[str, list[TokenRates]] = {}
    for e in entries:
        rates = result_rates(e.result) if e.cell is not None else None
        if rates is None or e.cell is None:
            continue
        rest = {k: v for k, v in e.cell.items() if k not in _LENGTH_AXES}
        series.setdefault(cell_label(rest), []).append(rates)
    for points in series.values():
        points.sort(key=lambda r: (r.prompt_tokens + r.gen_tokens, r.prompt_tokens))
    return series


def _context_plot(entries: Sequence[Entry], label: str) -> Plot | None:
    """A generation sweep's tokens/s (prompt and output, each ± SD over the generations) and
    TPOT against each cell's context length (prompt + output tokens); each point named
    ``P+G``."""
    series = _context_series(entries)
    if not series:
        return None
    fig = _figure(10.0, 4.0)
    rates_ax, tpot_ax = fig.subplots(1, 2)
    for n, (name, points) in enumerate(series.items()):
        color = f"C{n % 10}"
        context = [r.prompt_tokens + r.gen_tokens for r in points]
        for what, mark, mean, sd in (
            ("prompt", "s--", [r.prompt_per_s for r in points], [r.prompt_sd for r in points]),
            ("output", "o-", [r.output_per_s for r in points], [r.output_sd for r in points]),
        ):
            y = np.array([np.nan if v is None else v for v in mean], dtype=np.float64)
            err = np.array([0.0 if v is None else v for v in sd], dtype=np.float64)
            rates_ax.errorbar(
                context, y, yerr=err, fmt=mark, color=color, capsize=3, label=f"{what} {name}".strip()
            )
        tpot = np.array([np.nan if r.tpot_ns is None else r.tpot_ns for r in points], dtype=np.float64)
        tpot_ax.plot(context, _us(tpot), "o-", color=color, label=name or None)
        for r, x, t in zip(points, context, tpot, strict=True):
            tpot_ax.annotate(
                f"{r.prompt_tokens}+{r.gen_tokens}", (x, float(_us(t))), textcoords="offset points",
                xytext=(4, 4), fontsize=7,
            )  # fmt: skip
    rates_ax.set_yscale("log")
    rates_ax.set_ylabel("tokens/s (mean ± SD over the generations)")
    tpot_ax.set_ylabel("TPOT, median (µs)")
    tpot_ax.set_ylim(bottom=0)
    for ax in (rates_ax, tpot_ax):
        ax.set_xlabel("context length (prompt + output tokens)")
    rates_ax.legend(fontsize=7)
    if any(series):
        tpot_ax.legend(fontsize=7)
    _title(rates_ax, f"{label}: tokens/s (prompt: squares, output: circles)")
    _title(tpot_ax, f"{label}: time per output token (each point prompt+output)")
    return Plot(_slug(f"{label}-tokens-by-context"), f"{label}: tokens/s and TPOT by context", _png(fig))


def _results_section(path: str, entries: Sequence[Entry], failed: Sequence[FailedCell]) -> Section:
    """The section of a results document or a sweep (titled by its path): the table, then a
    block per result with its facts, warnings and plots (none for a sweep's cell: it keeps no
    samples)."""
    tokens = generation_table(entries)
    section = Section(path, tokens or (summary_table(entries) if entries else []))
    if tokens:
        section.notes += list(GENERATION_SWEEP_NOTES)
        plot = _context_plot(entries, os.path.basename(path))
        if plot is not None:
            section.plots.append(plot)
    for e in entries:
        block = Block(e.label, result_facts(e), warning_lines(e.result))
        if isinstance(e.result, Result):
            block.plots += _latency_plots(e.result, e.label)
            if is_load(e.result.generation):
                block.plots += _load_plots(e.result.generation or {}, e.label)
            elif e.result.generation is not None:
                block.plots += _generation_plots(e.result.generation, e.label)
            if e.result.profile is not None:
                block.plots += _profile_plots(e.result, e.label)
        section.results.append(block)
    if any(e.cell is not None for e in entries) or failed:
        section.notes.append(
            "A sweep's JSONL keeps each cell's statistics, not its samples: no plots"
            + (" of a single cell." if tokens else ".")
        )
    section.notes += [f"failed: cell {cell_label(f.cell)}: {f.error}" for f in failed]
    curves = _curves([e.result for e in entries if e.cell is None])
    for group in curves:
        name = os.path.basename(path)
        if len(curves) > 1:
            name += f" {group[0].model.get('name', '?')}"
        curve = _curve_plot(group, name)
        if curve is not None:
            section.plots.append(curve)
    return section


def gate_section(path: str, facts: Sequence[tuple[str, str]]) -> Section:
    """A gate's section: its decision, threshold, pairing and notes
    (:func:`~inferspeed.report.exports.gate_facts`), before its two results' section."""
    head, *rest = facts
    return Section(
        f"{os.path.basename(path)}: gate, {head[1]}", notes=[f"{name}: {text}" for name, text in rest]
    )


def plots_for(
    path: str,
    doc: TradeoffResult | CapacityResult | Mapping[str, object] | None,
    results: Sequence[Result | Entry] = (),
    failed: Sequence[FailedCell] = (),
) -> Section:
    """The section of one input file: ``results`` (of a results document, or labelled
    entries; a Result is labelled here) and ``failed`` (a sweep's failed cells), or ``doc`` a
    trade-off or a capacity search read back from its document (its parsed JSON still works
    until the next release, with a deprecation warning)."""
    require_matplotlib()
    label = os.path.basename(path)
    if isinstance(doc, Mapping):
        doc = _from_document(doc)
    if isinstance(doc, TradeoffResult):
        table = [["variant", "speedup (95% CI)", "relative L2 error", "cosine", "Pareto"]]
        for row in doc.rows:
            lo, hi = row.get("speedup_ci") or [row["speedup"], row["speedup"]]
            fid = row["fidelity"]
            table.append(
                [
                    str(row["label"]),
                    f"{row['speedup']:.3f} ({lo:.3f}–{hi:.3f})",
                    f"{fid['relative_l2_error']:.3g}",
                    f"{fid.get('cosine_similarity', float('nan')):.6f}",
                    "*" if row.get("pareto") else "",
                ]
            )
        return Section(f"{label}: trade-off", table, [_tradeoff_plot(doc, label)])
    if isinstance(doc, CapacityResult):
        cap = doc.capacity_qps
        section = Section(
            f"{label}: capacity", notes=[f"capacity: {cap:,.0f} requests/s" if cap else "no rate met the SLO"]
        )
        plot = _capacity_plot(doc, label)
        if plot is not None:
            section.plots.append(plot)
        return section
    plain = label_entries([(path, r, None) for r in results if isinstance(r, Result)])
    entries = iter(plain)
    return _results_section(path, [r if isinstance(r, Entry) else next(entries) for r in results], failed)


def _from_document(doc: Mapping[str, object]) -> TradeoffResult | CapacityResult | None:
    """A trade-off or capacity document given as parsed JSON, as plots_for once took it."""
    import warnings

    warnings.warn(
        "plots_for takes a TradeoffResult or CapacityResult (from_dict reads a document); "
        "a parsed document works until the next release",
        DeprecationWarning,
        stacklevel=3,
    )
    scenario = doc.get("scenario")
    if scenario == "tradeoff":
        return TradeoffResult.from_dict(doc)
    return CapacityResult.from_dict(doc) if scenario == "capacity" else None


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #555; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
table.facts th { text-align: left; vertical-align: top; font-weight: 600; }
table.facts td { text-align: left; }
ul.warnings li { color: #8a4b00; }
"""


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    head, *body = rows
    parts = ["<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body]
    return [*parts, "</table>"]


def _figure_html(p: Plot) -> str:
    data = base64.b64encode(p.png).decode("ascii")
    return (
        f'<figure id="{html.escape(p.slug)}"><img src="data:image/png;base64,{data}" '
        f'alt="{html.escape(p.title)}"><figcaption>{html.escape(p.title)}</figcaption></figure>'
    )


def _block_html(b: Block) -> list[str]:
    parts = [f"<h3>{html.escape(b.label)}</h3>", '<table class="facts">']
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in b.facts]
    parts.append("</table>")
    if b.warnings:
        parts.append('<p>Warnings:</p><ul class="warnings">')
        parts += [f"<li>{html.escape(w)}</li>" for w in b.warnings]
        parts.append("</ul>")
    else:
        parts.append("<p>Warnings: none.</p>")
    return parts + [_figure_html(p) for p in b.plots]


def render_html(sections: Sequence[Section], title: str = "inferspeed report") -> str:
    """One self-contained HTML document: tables, and every plot as an embedded PNG."""
    from ..version import __version__

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>inferspeed {html.escape(__version__)}: {sum(len(s.all_plots) for s in sections)} plots.</p>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(note)}</p>" for note in s.notes]
        parts += _table(s.table) if s.table else []
        for b in s.results:
            parts += _block_html(b)
        parts += [_figure_html(p) for p in s.plots]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_pngs(sections: Sequence[Section], folder: str) -> list[str]:
    """Every plot as FOLDER/<slug>.png (numbered when two share a slug); returns the paths."""
    os.makedirs(folder, exist_ok=True)
    used: dict[str, int] = {}
    paths = []
    for s in sections:
        for p in s.all_plots:
            used[p.slug] = used.get(p.slug, 0) + 1
            name = p.slug if used[p.slug] == 1 else f"{p.slug}-{used[p.slug]}"
            path = os.path.join(folder, f"{name}.png")
            with open(path, "wb") as f:
                f.write(p.png)
            paths.append(path)
    return paths
