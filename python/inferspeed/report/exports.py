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

The report (``inferspeed report --markdown`` / ``--html``): every result as an ``Entry`` with a
label no other entry has (``label_entries``), its facts (``result_facts``: date, machine, ONNX
Runtime, threads, configuration, bound input shapes), its warnings in words, and a comparison
of each result with the first (``comparison_table``). A sweep's lines, as
:mod:`inferspeed.results.sweepfile` reads them, give one ``CellResult`` per measured cell
(statistics without samples) and a ``FailedCell`` per failed one (``load_sweep``).

A sweep's own table (``sweep --markdown`` / ``--csv``, ``report SWEEP.jsonl --markdown``): one
row per cell, its figures as its metric reads them (:data:`SWEEP_TABLES`; a decoder's:
llama-bench's ``pp{P}`` and ``tg{G}`` tokens per second, each mean ± SD over the cell's
generations, then TTFT and TPOT), in Markdown with units (``sweep_markdown``) or in CSV with
the cell's axes as columns and times in nanoseconds (``sweep_csv``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from ..errors import InputError
from ..results.result import Result
from ..results.sweepfile import Cell, CellResult, SweepLine, TokenRates, cell_label, token_rates
from ..units import format_duration

if TYPE_CHECKING:
    from ..tools.sweep import SweepResult

__all__ = [
    "GENERATION_SWEEP_NOTES",
    "PYPERF_RUNS",
    "PYPERF_VALUES",
    "SWEEP_TABLES",
    "Entry",
    "FailedCell",
    "GateRecord",
    "SummaryRow",
    "SweepTable",
    "comparison_table",
    "gate_facts",
    "generation_table",
    "label_entries",
    "load_sweep",
    "markdown_report",
    "rates_cells",
    "rates_values",
    "result_facts",
    "result_rates",
    "scenario_throughput",
    "summary_cells",
    "summary_row",
    "summary_table",
    "sweep_csv",
    "sweep_markdown",
    "to_csv",
    "to_markdown",
    "to_pyperf",
    "tokens_text",
    "warning_lines",
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


#: A result a report shows: measured (with samples) or a sweep's cell (statistics only).
AnyResult = Result | CellResult


def result_name(result: AnyResult) -> str:
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


def scenario_throughput(result: AnyResult) -> tuple[float | None, str]:
    """The calls per second of the scenario that ran, and how it was counted: a server's
    achieved rate (completed requests per second), offline's (every worker's calls per
    second), else one stream's (1 / mean latency). One figure: the throughput line, GFLOP/s
    and a report's table all cite it."""
    sc = result.scenario_stats
    if result.scenario == "server" and sc.get("achieved_qps") is not None:
        return float(sc["achieved_qps"]), "achieved: completed requests per second"
    if result.scenario == "offline" and sc.get("throughput_per_s") is not None:
        workers = sc.get("concurrency") or result.config.get("concurrency") or 1
        return float(sc["throughput_per_s"]), f"offline: {workers} worker(s) back to back"
    return result.stats.throughput_per_s, "one stream: 1 / mean latency"


def throughput_of(result: AnyResult) -> float | None:
    """Calls per second of the scenario that ran (:func:`scenario_throughput`); None when
    unknown or 0."""
    value, _ = scenario_throughput(result)
    return float(value) if value else None


class SummaryRow(TypedDict):
    """A result's summary row (:data:`_COLUMNS`): times in nanoseconds, None where unknown."""

    name: str
    scenario: str
    samples: int
    median_ns: float
    ci95_median_lo_ns: float | None
    ci95_median_hi_ns: float | None
    p90_ns: float
    p99_ns: float
    p999_ns: float
    mean_ns: float
    throughput_per_s: float | None
    warnings: str


def summary_row(result: AnyResult) -> SummaryRow:
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


def to_csv(results: Sequence[AnyResult], labels: Sequence[str] | None = None) -> str:
    """The summary rows as CSV; when a result holds a decoder's generations, the columns of a
    generation sweep's CSV too (:func:`rates_values`: tokens/s mean and SD, TTFT, TPOT); with
    ``labels`` (one per result), a last column ``label``."""
    out = io.StringIO()
    rates = [result_rates(r) for r in results]
    extra = list(_GENERATION_COLUMNS) if any(r is not None for r in rates) else []
    columns = list(_COLUMNS) + extra + (["label"] if labels is not None else [])
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for k, r in enumerate(results):
        row: dict[str, object] = {**summary_row(r), **rates_values(rates[k])}
        writer.writerow(row | ({"label": labels[k]} if labels is not None else {}))
    return out.getvalue()


def summary_cells(result: AnyResult) -> dict[str, str]:
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


def to_pyperf(results: Sequence[Result], name: str | None = None) -> dict[str, object]:
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


# The report: labelled entries, their facts and warnings, comparisons, sweeps, Markdown.


@dataclass(frozen=True)
class Entry:
    """One result of a report: its label (no other entry of the report has it), the file it
    came from, and, for a sweep's cell, the cell."""

    label: str
    source: str
    result: AnyResult
    cell: Cell | None = None


@dataclass(frozen=True)
class FailedCell:
    """A sweep's cell that has no result: the file, the cell and the error recorded."""

    source: str
    cell: Mapping[str, Any]
    error: str


def _compact(value: Any) -> str:
    if isinstance(value, str) or value is None:
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _differing_config(group: Sequence[Entry]) -> list[str]:
    configs = [e.result.config for e in group]
    keys = sorted({k for c in configs for k in c})
    differ = [k for k in keys if len({_compact(c.get(k)) for c in configs}) > 1]
    return [", ".join(f"{k}={_compact(e.result.config.get(k))}" for k in differ[:4]) for e in group]


def _differing_source(group: Sequence[Entry]) -> list[str]:
    names = [os.path.basename(e.source) for e in group]
    if len(set(names)) < len(set(e.source for e in group)):
        names = [e.source for e in group]
    return [f"from {n}" for n in names]


def _differing_model(group: Sequence[Entry]) -> list[str]:
    return [str(e.result.model.get("path", "?")) for e in group]


def _relabel(entries: list[Entry], suffixes: Any) -> list[Entry]:
    """Each group of entries that share a label gets the suffixes ``suffixes(group)`` gives it,
    when they tell the group's entries apart (not all equal)."""
    groups: dict[str, list[int]] = {}
    for k, e in enumerate(entries):
        groups.setdefault(e.label, []).append(k)
    out = list(entries)
    for members in groups.values():
        if len(members) < 2:
            continue
        found = suffixes([entries[k] for k in members])
        if len(set(found)) > 1:
            for k, suffix in zip(members, found, strict=True):
                out[k] = Entry(f"{entries[k].label} [{suffix}]", *_rest(entries[k]))
    return out


def _rest(e: Entry) -> tuple[str, AnyResult, Cell | None]:
    return e.source, e.result, e.cell


def label_entries(items: Sequence[tuple[str, AnyResult, Cell | None]]) -> list[Entry]:
    """Entries of (source file, result, sweep cell or None), each labelled by its model (with
    threads, load, or the sweep's cell); labels several share are told apart by the config
    that differs between them, then by source file, then model path, then a number."""
    entries = []
    for source, result, cell in items:
        name = (
            result_name(result) if cell is None else f"{result.model.get('name', '?')} [{cell_label(cell)}]"
        )
        entries.append(Entry(name, source, result, cell))
    for suffixes in (_differing_config, _differing_source, _differing_model):
        entries = _relabel(entries, suffixes)
    while len({e.label for e in entries}) < len(entries):
        entries = _relabel(entries, lambda group: [f"#{n + 1}" for n in range(len(group))])
    return entries


def _shape(shape: Any) -> str:
    if shape is None:
        return "any shape"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _because(why: Any) -> str:
    if isinstance(why, Mapping):
        return "; ".join(f"{k}: {_because(v)}" for k, v in why.items())
    if isinstance(why, list | tuple):
        return "; ".join(_because(v) for v in why)
    return str(why)


def _input_facts(model: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One fact per input: its type and bound shape (the model's own when it differs), where
    its values came from, and why its shape was chosen when the result says."""
    facts = []
    for inp in model.get("inputs") or []:
        bound = inp.get("bound_shape")
        text = f"{inp.get('type', '?')} {_shape(bound)}"
        if "shape" in inp and inp["shape"] != bound:
            text += f" (the model's shape: {_shape(inp['shape'])})"
        if inp.get("source"):
            text += f", {inp['source']} values"
        if inp.get("chosen_because"):
            text += f"; chosen because {_because(inp['chosen_because'])}"
        facts.append((f"input {inp.get('name', '?')}", text))
    return facts or [("inputs", "none recorded")]


def _environment_facts(env: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Date, machine, system, ONNX Runtime, load and command line of a result's environment."""
    if not env:
        return [("environment", "not recorded (a sweep's JSONL keeps none)")]
    cpu, osd, ort = env.get("cpu") or {}, env.get("os") or {}, env.get("onnxruntime") or {}
    machine = (
        f"{cpu.get('model', '?')}, {cpu.get('logical_cores', '?')} logical cores "
        f"({cpu.get('physical_cores', '?')} physical)"
    )
    if cpu.get("caches"):
        machine += ", caches " + " ".join(f"{k} {v}" for k, v in cpu["caches"].items())
    if cpu.get("governor"):
        machine += f", governor {cpu['governor']}"
    system = " ".join(str(osd.get(k, "")) for k in ("system", "release", "machine")).strip() or "?"
    software = ", ".join(f"{k} {env[k]}" for k in ("python", "numpy", "inferspeed") if env.get(k))
    runtime = str(ort.get("version", "?"))
    if ort.get("api_version"):
        runtime += f" (API {ort['api_version']})"
    if ort.get("providers"):
        runtime += ", providers " + ", ".join(map(str, ort["providers"]))
    if ort.get("library"):
        runtime += f", {ort['library']}"
    facts = [
        ("date", str(env.get("start_time") or "not recorded").replace("T", " ")),
        ("machine", machine),
        ("system", f"{system}; {software}" if software else system),
        ("ONNX Runtime", runtime),
    ]
    if env.get("load_average"):
        facts.append(("load average", ", ".join(f"{x:.2f}" for x in env["load_average"])))
    if env.get("command_line"):
        facts.append(("command", " ".join(map(str, env["command_line"]))))
    return facts


def _threads_text(r: AnyResult) -> str:
    """Intra- and inter-op threads: as set, and as ONNX Runtime resolved them when recorded."""
    c = r.config
    resolved = next(
        (
            where[key]
            for where in (r.session, r.loop)
            for key in ("intra_op_threads", "threads")
            if where.get(key)
        ),
        None,
    )
    text = f"intra-op {c['threads']}" if c.get("threads") else "intra-op: ONNX Runtime's default"
    if resolved is not None and resolved != c.get("threads"):
        text += f" (resolved: {resolved})"
    elif not c.get("threads"):
        text += " (the count it chose is not recorded)"
    text += f", inter-op {c['inter_op_threads']}" if c.get("inter_op_threads") else ""
    if r.loop.get("pinned_cpu") is not None:
        text += f", pinned to CPU {r.loop['pinned_cpu']}"
    return text


_SHOWN = ("mode", "cache", "scenario", "iterations", "max_time", "warmup_time", "warmup_iterations")
_ELSEWHERE = ("threads", "inter_op_threads", "ort_lib")


def _config_text(r: AnyResult) -> str:
    """The loop's settings (mode, cache, scenario, limits), then every other setting that
    differs from inferspeed's default."""
    from ..config import Config

    c = r.config
    parts = [f"mode {c.get('mode', '?')}", f"cache {c.get('cache') or r.loop.get('cache', '?')}"]
    parts.append(f"scenario {r.scenario}")
    if c.get("iterations") is not None:
        parts.append(f"at most {c['iterations']} iterations")
    rounds = r.loop.get("rounds")
    if isinstance(rounds, int) and rounds > 1:
        # A pooled interleaved result's config is one round's: the run is all its rounds.
        each = (
            f" of at most {format_duration(c['max_time'] * 1e9)} each"
            if c.get("max_time") is not None
            else ""
        )
        timed = (
            f" (about {r.stats.count * r.stats.mean_ns / 1e9:.3g} s timed in all)" if r.stats.mean_ns else ""
        )
        parts.append(f"{rounds} interleaved rounds{each}{timed}")
    elif c.get("max_time") is not None:
        parts.append(f"at most {c['max_time']:g} s")
    if c.get("warmup_time") is not None:
        parts.append(f"warm-up {c['warmup_time']:g} s")
    if c.get("warmup_iterations") is not None:
        parts.append(f"warm-up {c['warmup_iterations']} iterations")
    defaults = Config().to_dict()
    for key, value in c.items():
        if key in _SHOWN or key in _ELSEWHERE or value is None:
            continue
        if key not in defaults or _compact(value) != _compact(defaults[key]):
            parts.append(f"{key}={_compact(value)}")
    return ", ".join(parts)


def result_facts(entry: Entry) -> list[tuple[str, str]]:
    """What a reader needs to trust and repeat a result, as (name, text) pairs: where it came
    from, date, machine, ONNX Runtime, threads, configuration, model and bound input shapes."""
    r = entry.result
    source = entry.source + (f", sweep cell {cell_label(entry.cell)}" if entry.cell is not None else "")
    model = r.model
    model_text = str(model.get("path") or model.get("name", "?"))
    if model.get("sha256"):
        model_text += f" (sha256 {str(model['sha256'])[:12]}…)"
    facts = [("source", source), *_environment_facts(r.environment)]
    facts += [("threads", _threads_text(r)), ("config", _config_text(r)), ("model", model_text)]
    facts += _input_facts(model)
    if r.interrupted:
        facts.append(("partial", "yes: stopped by Ctrl-C or SIGTERM before its end"))
    facts += [("notice", str(n)) for n in r.notices]
    return facts


def warning_lines(result: AnyResult) -> list[str]:
    """Each warning in words: its code, then its message (what was seen and what to do)."""
    return [f"{w.code}: {w.message}" for w in result.warnings]


_COMPARISON_HEAD = ["result", "median ratio (95% CI)", "p99 ratio (95% CI)", "p-value", "verdict", "how"]
_METHODS = {
    "independent": "separate runs",
    "blocks": "separate runs; interval from whole stretches (samples correlated in time)",
    "machine-variation": "separate runs; interval widened to the machine's variation in time",
    "paired": "interleaved rounds, paired",
}


def _ratio(value: float, ci: tuple[float, float] | None = None) -> str:
    return f"{value:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci is not None else "")


def _comparison_row(base: Entry, entry: Entry) -> list[str]:
    from ..analysis.compare import check_comparable, compare

    a, b = base.result, entry.result
    why = None
    if isinstance(a, Result) and isinstance(b, Result):
        why = check_comparable(a, b)
        try:
            c = compare(a, b, baseline_label=base.label, candidate_label=entry.label)
        except InputError as exc:
            verdict = f"not tested: {exc}"
        else:
            how = _METHODS.get(c.method, c.method)
            if c.machine_variation is not None:
                how += f" (±{c.machine_variation:.0%})"
            return [
                entry.label,
                _ratio(c.ratio_median, c.ratio_median_ci),
                _ratio(c.ratio_p99, c.ratio_p99_ci),
                f"{c.p_value:.3g}",
                c.verdict + (f" (caution: {why})" if why else ""),
                how,
            ]
    else:
        verdict = "not tested: a sweep's cell keeps no samples (ratios of its statistics only)"
    sa, sb = a.stats, b.stats
    return [
        entry.label,
        _ratio(sb.median_ns / sa.median_ns) if sa.median_ns > 0 else "-",
        _ratio(sb.p99_ns / sa.p99_ns) if sa.p99_ns > 0 else "-",
        "-",
        verdict + (f" (caution: {why})" if why else ""),
        "separate runs",
    ]


def comparison_table(entries: Sequence[Entry]) -> tuple[list[list[str]], list[str]]:
    """Each entry after the first compared with the first (``analysis.compare.compare`` when
    both have samples): the table (its head first) and notes on how to read it. Empty for
    fewer than two entries."""
    from ..config import DEFAULT_THRESHOLD

    if len(entries) < 2:
        return [], []
    rows = [_comparison_row(entries[0], e) for e in entries[1:]]
    notes = [
        f"Each result against the first, {entries[0].label}: ratios are result / first "
        "(above 1: slower), with 95% intervals; the verdict needs the test significant, the "
        f"interval excluding 1 and a difference above {DEFAULT_THRESHOLD:.0%}."
    ]
    if any(row[-1].startswith("separate runs") for row in rows):
        notes.append(
            "A row compared as separate runs: the machine may have changed speed between them, "
            "so each interval is at least as wide as the variation each run saw within itself. "
            "For a decision, measure both in one interleaved run: inferspeed run A.onnx B.onnx."
        )
    if any(row[-1] == _METHODS["paired"] for row in rows):
        notes.append(
            "A row measured in interleaved rounds in one process: its ratios are paired round "
            "by round, so a change of the machine's speed hits both sides alike."
        )
    return [list(_COMPARISON_HEAD), *rows], notes


# A gate's document (``inferspeed gate --json``): its two results and the ``gate`` object.

#: The gate object's fields read by name; any other is shown as it is (a newer gate's).
_GATE_FIELDS = frozenset(
    ("baseline", "candidate", "statistic", "fail_if_slower", "fail_if_more", "rounds", "failed",
     "comparison", "notes", "metric", "order", "seed", "threshold")
)  # fmt: skip


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _pair(value: object) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = _number(value[0]), _number(value[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


@dataclass(frozen=True)
class GateRecord:
    """What a gate's document says it decided (its ``gate`` object, read leniently: a missing
    field is None, one this version does not know is kept in ``other`` as text), with the
    rounds' order and seed from its results where the object has none."""

    baseline: str
    candidate: str
    metric: str
    statistic: str
    #: The fraction the candidate may be worse by (--fail-if-slower / --fail-if-more); None:
    #: report only.
    limit: float | None
    failed: bool | None
    ratio: float | None
    ratio_ci: tuple[float, float] | None
    #: The comparison's band of "no significant difference" (latency only).
    threshold: float | None
    verdict: str | None
    #: Interleaved rounds (0 or None: each side measured once, a deterministic metric).
    rounds: int | None
    order: str | None
    seed: int | None
    notes: tuple[str, ...] = ()
    other: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_document(cls, doc: Mapping[str, object], results: Sequence[AnyResult] = ()) -> GateRecord | None:
        """The gate of a parsed gate document; None when ``doc`` has no ``gate`` object."""
        gate = doc.get("gate")
        if not isinstance(gate, Mapping):
            return None
        nested = gate.get("comparison")
        comp: Mapping[str, object] = nested if isinstance(nested, Mapping) else gate
        metric = str(gate.get("metric") or comp.get("metric") or "latency")
        statistic = str(gate.get("statistic") or comp.get("statistic") or ("median" if nested else metric))
        ratio, ratio_ci = _number(comp.get("ratio")), _pair(comp.get("ratio_ci"))
        if isinstance(nested, Mapping) and (statistic == "median" or ratio is None):
            ratio, ratio_ci = _number(comp.get("ratio_median")), _pair(comp.get("ratio_median_ci"))
        limit = next(
            (v for k in ("fail_if_slower", "fail_if_more") if (v := _number(gate.get(k))) is not None), None
        )
        pairing = results[0].loop.get("interleave") if results else None
        pairing = pairing if isinstance(pairing, Mapping) else {}
        rounds, seed = gate.get("rounds", comp.get("rounds")), gate.get("seed", pairing.get("seed"))
        notes = gate.get("notes")
        return cls(
            baseline=str(gate.get("baseline", "?")),
            candidate=str(gate.get("candidate", "?")),
            metric=metric,
            statistic=statistic,
            limit=limit,
            failed=gate["failed"] if isinstance(gate.get("failed"), bool) else None,
            ratio=ratio,
            ratio_ci=ratio_ci,
            threshold=_number(gate.get("threshold", comp.get("threshold"))),
            verdict=None if comp.get("verdict") is None else str(comp["verdict"]),
            rounds=rounds if isinstance(rounds, int) else None,
            order=str(gate.get("order") or pairing.get("order") or "") or None,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            notes=tuple(map(str, notes)) if isinstance(notes, list) else (),
            other=tuple(
                (k, _compact(v))
                for k, v in gate.items()
                if isinstance(nested, Mapping) and k not in _GATE_FIELDS
            ),
        )


def gate_facts(gate: GateRecord, results: Sequence[AnyResult] = ()) -> list[tuple[str, str]]:
    """A gate as (name, text) pairs, as the text, Markdown and HTML reports show it: the two
    sides, its decision, its threshold, how the sides were paired, how long each was timed (the
    whole gate's, from ``results``, its two results), its notes and any field of a newer gate."""
    facts = [
        ("gate", f"{gate.candidate} against {gate.baseline}"),
        ("decision", _gate_decision(gate)),
        ("threshold", _gate_threshold(gate)),
        ("pairing", _gate_pairing(gate)),
    ]
    if results and gate.rounds:
        each = results[0].config.get("max_time")
        rounds = f"{gate.rounds} rounds" + (
            f" of at most {format_duration(each * 1e9)}" if isinstance(each, int | float) else ""
        )
        timed = " and ".join(
            f"{r.stats.count * r.stats.mean_ns / 1e9:.3g} s ({r.model.get('name', '?')})" for r in results
        )
        facts.append(("time", f"{rounds} per side, about {timed} timed in all"))
    facts += [("note", note) for note in gate.notes]
    return facts + list(gate.other)


def _gate_figures(gate: GateRecord) -> str:
    if gate.ratio is None:
        return f"{gate.statistic} ratio not recorded"
    ci = f" (95% CI {gate.ratio_ci[0]:.3f}–{gate.ratio_ci[1]:.3f})" if gate.ratio_ci else ""
    return f"{gate.statistic} ratio {gate.ratio:.3f}{ci}"


def _gate_decision(gate: GateRecord) -> str:
    """pass or FAIL with the figures decided on, as ``inferspeed gate`` printed it."""
    figures = _gate_figures(gate)
    if gate.limit is None or gate.failed is None:
        return f"none: no limit was given (report only); {figures}" + (
            f", {gate.verdict}" if gate.verdict else ""
        )
    if gate.failed:
        worse = "slower than" if gate.metric in ("latency", "generation") else f"worse in {gate.metric} than"
        return (
            f"FAIL: {gate.candidate} is {worse} {gate.baseline}: {figures}, more than the "
            f"{gate.limit:.1%} allowed"
        )
    return f"pass: {figures}; fails above {1 + gate.limit:.3f}"


def _gate_threshold(gate: GateRecord) -> str:
    """The rule the decision applied, and the comparison's own band when it has one."""
    if gate.limit is None:
        return "none given: --fail-if-slower PCT (--fail-if-more PCT for a count) sets one"
    if gate.metric not in ("latency", "generation"):  # a generation's samples are latencies
        return (
            f"fails when the candidate's {gate.metric} per call exceed the baseline's by more than "
            f"{gate.limit:.1%} (ratio above {1 + gate.limit:.3f}; a count is deterministic)"
        )
    band = (
        f"; its comparison's verdict calls a difference within ±{gate.threshold:.0%} "
        "'no significant difference'"
        if gate.threshold is not None and abs(gate.threshold - gate.limit) > 1e-12
        else ""
    )
    return (
        f"fails when the {gate.statistic} ratio is above {1 + gate.limit:.3f} (more than "
        f"{gate.limit:.1%} slower) and significantly above 1 (its 95% interval excludes 1){band}"
    )


def _gate_pairing(gate: GateRecord) -> str:
    if not gate.rounds:
        return f"none: each side measured once ({gate.metric} is deterministic)"
    order = f"{gate.order} order" if gate.order else "an interleaved order"
    seed = f", seed {gate.seed}" if gate.seed is not None else ""
    return (
        f"paired: {gate.rounds} interleaved rounds in {order}{seed}, both sides in one process; "
        "the ratio and its interval are of the rounds' paired figures"
    )


def load_sweep(
    path: str, lines: Sequence[SweepLine]
) -> tuple[list[tuple[CellResult, Cell]], list[FailedCell]]:
    """The measured cells (result, cell) and the failed cells among a sweep's ``lines`` (read
    by :func:`inferspeed.results.sweepfile.read_sweep` from ``path``, which checked them)."""
    cells: list[tuple[CellResult, Mapping[str, Any]]] = []
    failed: list[FailedCell] = []
    for line in lines:
        if line.error is not None:
            failed.append(FailedCell(path, line.cell, line.error))
        elif line.result is not None:
            cells.append((line.cell_result(), line.cell))
    return cells, failed


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(rows: Sequence[Sequence[str]], right: bool = False) -> list[str]:
    """Rows (the head first) as a Markdown table; ``right``: every column but the first
    aligned right (figures)."""
    head, *body = rows
    rule = "|---|" + ("---:|" if right else "---|") * (len(head) - 1)
    lines = ["| " + " | ".join(map(_md, head)) + " |", rule]
    return lines + ["| " + " | ".join(map(_md, row)) + " |" for row in body]


def summary_table(entries: Sequence[Entry]) -> list[list[str]]:
    """The summary of each entry by label (head first), as the Markdown and HTML reports show it."""
    columns = ["median (95% CI)", "p90", "p99", "p99.9", "throughput", "warnings"]
    rows = [["result", "scenario", "samples", *columns]]
    for e in entries:
        cells = summary_cells(e.result)
        rows.append([e.label, cells["scenario"], cells["samples"], *(cells[c] for c in columns)])
    return rows


def generation_table(entries: Sequence[Entry]) -> list[list[str]]:
    """The sweep cells among ``entries`` that hold a decoder's generations, as a generation
    sweep's table shows them (head first: ``cell``, then :data:`SWEEP_TABLES`'s titles, the
    tokens/s ± SD over the generations, TTFT and TPOT); empty when there are none."""
    rows = [
        [e.label, *rates_cells(rates)]
        for e in entries
        if e.cell is not None and (rates := result_rates(e.result)) is not None
    ]
    return [["cell", *_GENERATION_TITLES], *rows] if rows else []


def markdown_report(
    entries: Sequence[Entry],
    failed: Sequence[FailedCell] = (),
    comparison: tuple[list[list[str]], list[str]] = ([], []),
    gates: Sequence[tuple[str, list[tuple[str, str]]]] = (),
) -> str:
    """The Markdown report: the summary table, each gate (its file and :func:`gate_facts`),
    the comparison with the first result, failed sweep cells, then each result's facts and
    warnings in words."""
    lines = ["# inferspeed report", ""]
    if entries:
        lines += [*_md_table(summary_table(entries)), ""]
    tokens = generation_table(entries)
    if tokens:
        lines += ["## Tokens per second of the sweep's cells", "", *_md_table(tokens, True), ""]
        lines += [line for note in GENERATION_SWEEP_NOTES for line in (_md(note), "")]
    for source, facts in gates:
        lines += [f"## Gate: {_md(facts[0][1])} ({_md(source)})", ""]
        lines += [f"- **{name}**: {_md(text)}" for name, text in facts[1:]]
        lines.append("")
    table, notes = comparison
    if table:
        lines += [f"## Compared with {_md(entries[0].label)}", "", *_md_table(table), ""]
        for note in notes:
            lines += [_md(note), ""]
    if failed:
        lines += ["## Failed sweep cells", ""]
        lines += [f"- {_md(f.source)}, cell {_md(cell_label(f.cell))}: {_md(f.error)}" for f in failed]
        lines.append("")
    for e in entries:
        lines += [f"## {_md(e.label)}", ""]
        lines += [f"- **{name}**: {_md(text)}" for name, text in result_facts(e)]
        warnings = warning_lines(e.result)
        lines.append("- **warnings**:" + ("" if warnings else " none"))
        lines += [f"  - {_md(w)}" for w in warnings]
        lines.append("")
    return "\n".join(lines)


# A sweep's table: one row per cell, as `sweep --markdown` and `--csv` write it.


def tokens_text(per_s: float | None, sd: float | None = None) -> str:
    """Tokens per second, with their SD when there is one, as llama-bench prints them: to a
    precision that suits the figure (``95,478 ± 1,234``, ``412.5 ± 3.1``, ``12.34 ± 0.56``)."""
    if per_s is None:
        return "-"
    decimals = 0 if per_s >= 1000 else 1 if per_s >= 100 else 2
    text = f"{per_s:,.{decimals}f}"
    return text if sd is None else f"{text} ± {sd:,.{decimals}f}"


def _rounded(value: float | None, decimals: int = 3) -> float | None:
    return None if value is None else round(value, decimals)


def _latency_cells(line: SweepLine) -> list[str]:
    v = _latency_values(line)
    return [
        format_duration(v["median_ns"]),
        format_duration(v["p99_ns"]),
        format_duration(v["per_sample_ns"]),
        "-" if v["samples_per_s"] is None else f"{v['samples_per_s']:,.0f}/s",
    ]


def _latency_values(line: SweepLine) -> dict[str, Any]:
    median, p99 = line.value(("stats", "median_ns")), line.value(("stats", "p99_ns"))
    per_s = line.value(("stats", "throughput_per_s"))
    return {
        "median_ns": median,
        "p99_ns": p99,
        "per_sample_ns": None if median is None else median / line.batch,
        "samples_per_s": None if per_s is None else _rounded(per_s * line.batch),
    }


def _instruction_values(line: SweepLine) -> dict[str, Any]:
    per_call = line.value(("instructions", "instructions"))
    return {"instructions": per_call, "per_sample": None if per_call is None else per_call / line.batch}


def _instruction_cells(line: SweepLine) -> list[str]:
    return ["-" if v is None else f"{v:,.0f}" for v in _instruction_values(line).values()]


def result_rates(result: AnyResult) -> TokenRates | None:
    """A result's tokens per second and their spread over its generations
    (:func:`~inferspeed.results.sweepfile.token_rates`); None when it holds no generation."""
    if result.generation is None:
        return None
    return token_rates({"generation": result.generation, "stats": {"median_ns": result.stats.median_ns}})


def rates_cells(r: TokenRates | None) -> list[str]:
    """A generation's figures as a sweep's table shows them (:data:`SWEEP_TABLES`): the tests
    ``pp{P}`` and ``tg{G}``, each with its tokens/s ± SD, TTFT, TPOT and the generations."""
    if r is None:
        return ["-"] * len(_GENERATION_TITLES)
    return [
        r.pp,
        tokens_text(r.prompt_per_s, r.prompt_sd),
        r.tg,
        tokens_text(r.output_per_s, r.output_sd),
        format_duration(r.ttft_ns),
        format_duration(r.tpot_ns),
        str(r.generations),
        tokens_text(r.end_to_end_per_s),
    ]


def rates_values(r: TokenRates | None) -> dict[str, str | int | float | None]:
    """A generation's figures as CSV columns (:data:`SWEEP_TABLES`; times in ns); none
    without a generation."""
    if r is None:
        return {}
    return {
        "prompt_tokens": r.prompt_tokens,
        "gen_tokens": r.gen_tokens,
        "batch": r.batch,
        "generations": r.generations,
        "pp": r.pp,
        "pp_tokens_per_s_mean": _rounded(r.prompt_per_s),
        "pp_tokens_per_s_sd": _rounded(r.prompt_sd),
        "tg": r.tg,
        "tg_tokens_per_s_mean": _rounded(r.output_per_s),
        "tg_tokens_per_s_sd": _rounded(r.output_sd),
        "ttft_median_ns": r.ttft_ns,
        "tpot_median_ns": r.tpot_ns,
        "end_to_end_tokens_per_s": _rounded(r.end_to_end_per_s),
        "streams": r.streams,
    }


_GENERATION_TITLES = ("test", "prompt t/s", "test", "output t/s", "TTFT", "TPOT", "gens", "all t/s")
_GENERATION_COLUMNS = (
    "prompt_tokens", "gen_tokens", "batch", "generations", "pp", "pp_tokens_per_s_mean",
    "pp_tokens_per_s_sd", "tg", "tg_tokens_per_s_mean", "tg_tokens_per_s_sd", "ttft_median_ns",
    "tpot_median_ns", "end_to_end_tokens_per_s", "streams",
)  # fmt: skip


@dataclass(frozen=True)
class SweepTable:
    """A sweep's table for the cells of one metric: the Markdown columns' titles and a
    measured cell's texts, the CSV columns and a measured cell's values (times in ns), and
    the notes that say what the figures are."""

    titles: tuple[str, ...]
    cells: Callable[[SweepLine], list[str]]
    columns: tuple[str, ...]
    values: Callable[[SweepLine], dict[str, Any]]
    notes: tuple[str, ...] = ()


#: What the tokens per second of a decoder's sweep are, under its table.
GENERATION_SWEEP_NOTES = (
    "pp{P}: prompt tokens/s, batch x P over each generation's prefill call; tg{G}: output "
    "tokens/s, each generation's decode tokens over its decode steps' time (batch over their "
    "mean); each mean ± SD (n-1) over the cell's generations (gens), as llama-bench's avg ± "
    "stdev over its repetitions.",
    "TTFT (the prefill's call and the first token's sampling) and TPOT (one decode step's call): "
    "medians over the cell's generations and decode steps.",
    "all t/s: output tokens/s end to end, batch x G over the median whole generation; a cell of "
    "streams=K (K streams back to back, the offline scenario): every stream's tokens over the "
    "run, while its generations (gens) are its requests, its TTFT from each request's start, "
    "its TPOT the median inter-token latency within a request, and tg one stream's rate.",
)

#: The sweep table of each metric, by its name.
SWEEP_TABLES: Mapping[str, SweepTable] = MappingProxyType(
    {
        "latency": SweepTable(
            ("median", "p99", "per sample", "samples/s"),
            _latency_cells,
            ("median_ns", "p99_ns", "per_sample_ns", "samples_per_s"),
            _latency_values,
        ),
        "generation": SweepTable(
            _GENERATION_TITLES,
            lambda line: rates_cells(token_rates(line.result or {})),
            _GENERATION_COLUMNS,
            lambda line: rates_values(token_rates(line.result or {})),
            GENERATION_SWEEP_NOTES,
        ),
        "instructions": SweepTable(
            ("instructions", "per sample"),
            _instruction_cells,
            ("instructions", "per_sample"),
            _instruction_values,
        ),
    }
)


def sweep_markdown(found: SweepResult) -> str:
    """The sweep's table in Markdown: its model, one row per cell (its axes, then its figures
    as :data:`SWEEP_TABLES` has them for the cells' metric; a failed cell's error), the best
    cell by the sweep's ranking and the notes on the figures."""
    table = SWEEP_TABLES[found.metric]
    rows = [["cell", *table.titles]]
    for e in found.entries:
        if e.error is not None or e.result is None:
            rows.append([e.label, f"error: {e.error}", *[""] * (len(table.titles) - 1)])
        else:
            rows.append([e.label, *table.cells(e)])
    lines = [f"**{_md(_models(found))}**: a sweep of {len(found.entries)} cells", "", *_md_table(rows, True)]
    best = found.best
    if best is not None:
        lines += ["", f"best by {found.by}: {_md(best.label)}"]
    lines += [line for note in table.notes for line in ("", _md(note))]
    return "\n".join(lines) + "\n"


def _models(found: SweepResult) -> str:
    names = [str((e.result or {}).get("model", {}).get("name", "?")) for e in found.entries if e.result]
    return ", ".join(dict.fromkeys(names)) or "no cell measured"


def _axis_values(cell: Cell) -> dict[str, Any]:
    """A cell's axes as CSV columns: each axis by its name, each dim by its symbol."""
    out: dict[str, Any] = {}
    for name, value in cell.items():
        if name == "dims" and isinstance(value, Mapping):
            out.update({str(symbol): size for symbol, size in value.items()})
        else:
            out[name] = value
    return out


def sweep_csv(found: SweepResult) -> str:
    """The sweep's table in CSV: ``cell`` (its label), its axes (a column each; a figure of the
    same name, such as a generation's actual ``prompt_tokens``, takes its place), the figures
    of the cells' metric (:data:`SWEEP_TABLES`: times in ns, rates per second), ``best``
    (1 for the best cell by the sweep's ranking) and ``error``."""
    table = SWEEP_TABLES[found.metric]
    best = found.best
    rows = []
    for e in found.entries:
        measured = e.error is None and e.result is not None
        rows.append(
            {
                "cell": e.label,
                **_axis_values(e.cell),
                **(table.values(e) if measured else {}),
                "best": int(e is best),
                "error": e.error or "",
            }
        )
    named = [name for row in rows for name in row if name not in ("cell", "best", "error")]
    columns = ["cell", *dict.fromkeys([*named, *table.columns]), "best", "error"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
