"""Plain-text summaries for the terminal.

What differs between metrics is read from one table, :data:`TEXT` (by the metric's name, as
``inferspeed.metrics.METRICS`` names them): how a result, a list of comparisons and a gate of
that metric read, and the gate's decision line. :func:`render_result`,
:func:`render_comparisons`, :func:`render_gate` and :func:`gate_decision` look the metric up
there; nothing else in the report layer branches on it.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..analysis.compare import Comparison
from ..analysis.verdicts import ttft_samples
from ..results.result import Result
from ..stats.summary import summarize
from ..units import format_bytes, format_duration
from .exports import GENERATION_SWEEP_NOTES, SWEEP_TABLES, scenario_throughput
from .generation_requests import render_generation_load, step_verdict
from .instructions import (
    instruction_decision,
    render_instruction_comparisons,
    render_instruction_gate,
    render_instruction_sweep_row,
    render_instructions,
)

if TYPE_CHECKING:
    from ..analysis.capacity import CapacityResult
    from ..analysis.verdicts import Verdict
    from ..facts.info import InfoDocument
    from ..results.sweepfile import SweepLine
    from ..tools.gate import GateVerdict
    from ..tools.sweep import SweepResult
    from ..tools.tradeoff import TradeoffResult


__all__ = [
    "TEXT",
    "MetricText",
    "gate_decision",
    "generation_decision",
    "latency_decision",
    "render_capacity",
    "render_comparisons",
    "render_concurrency_table",
    "render_facts",
    "render_gate",
    "render_generation",
    "render_generation_sweep_row",
    "render_info",
    "render_latency",
    "render_latency_comparisons",
    "render_latency_gate",
    "render_latency_sweep_row",
    "render_profile",
    "render_profile_latency",
    "render_result",
    "render_sweep",
    "render_tradeoff",
]


def _rate(per_s: float | None) -> str:
    if per_s is None:
        return "-"
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M/s"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.2f} k/s"
    return f"{per_s:.1f} /s"


def _interval(lo: float | None, hi: float | None) -> str:
    return (
        f"{format_duration(lo) if lo is not None else '?'}–{format_duration(hi) if hi is not None else '?'}"
    )


def _scenario_text(result: Result) -> str:
    sc = result.scenario_stats
    if result.scenario == "server":
        return (
            f"server ({sc.get('arrival')} arrivals at {sc.get('offered_qps', 0):.1f}/s for "
            f"{sc.get('duration_s', 0):g} s, {sc.get('concurrency')} workers)"
        )
    if result.scenario == "offline":
        return f"offline ({sc.get('concurrency')} workers back to back for {sc.get('duration_s', 0):g} s)"
    return "single stream"


def _pcts(stats: Mapping[str, Any] | None) -> str:
    if not stats:
        return "-"
    return f"median {format_duration(stats['median_ns'])}, p99 {format_duration(stats['p99_ns'])}"


def _service_spread(stats: Mapping[str, Any] | None) -> str:
    """The service times' mean and spread: a server's noise checks (the warnings) look at the
    service times, not at the latency in the table, so their figures are shown here."""
    if not stats or not stats.get("mean_ns"):
        return ""
    cv = stats.get("cv")
    return f"; mean {format_duration(stats['mean_ns'])}, std {format_duration(stats.get('std_ns'))}" + (
        "" if cv is None else f" (CV {cv:.1%})"
    )


def _scenario_lines(result: Result) -> list[str]:
    sc = result.scenario_stats
    lines = []
    if result.scenario == "server":
        lines += [
            f"load       offered {sc['offered_qps']:.1f}/s, "
            f"achieved {sc['achieved_qps']:.1f}/s "
            f"({sc['completed']} of {sc['requests']} requests); latency counts from scheduled arrival",
            f"queueing   {_pcts(sc.get('queue_stats'))}",
            f"service    {_pcts(sc.get('service_stats'))}{_service_spread(sc.get('service_stats'))}",
            f"scheduler  lateness {_pcts(sc.get('scheduler_lateness_stats'))}",
        ]
    elif result.scenario == "offline":
        workers = ", ".join(
            f"{format_duration(w['median_ns'])} ({w['count']})" for w in sc.get("per_worker", [])
        )
        lines.append(f"workers    median (calls): {workers}")
    if "deadline_ns" in sc:
        lines.append(
            f"deadline   {format_duration(sc['deadline_ns'])}: {sc['deadline_miss_rate']:.2%} missed "
            f"({sc['deadline_misses']}), longest run of misses {sc['longest_miss_run']}"
        )
    return lines


def render_facts(facts: Sequence[tuple[str, str]]) -> str:
    """(name, text) pairs as lines, the names in a column (a gate's facts:
    :func:`~inferspeed.report.exports.gate_facts`)."""
    return "\n".join(f"{name:<10} {text}" for name, text in facts)


def render_result(result: Result) -> str:
    """The terminal report of one result, as its metric reads (:data:`TEXT`)."""
    return TEXT[result.metric].result(result)


def render_latency(result: Result) -> str:
    """The terminal report of a latency result: what was measured and how, the latency table,
    the intervals, spread, throughput, cold start and timer, then the figures the result has
    (compute, memory, adaptive stopping, scenario, processes) and its warnings."""
    s = result.stats
    columns = ("min", "median", "mean", "p90", "p95", "p99", "p99.9", "max")
    values = (s.min_ns, s.median_ns, s.mean_ns, s.p90_ns, s.p95_ns, s.p99_ns, s.p999_ns, s.max_ns)
    outliers = s.outliers_low + s.outliers_high
    lines = [
        *(_callable_head(result) if result.model.get("kind") == "callable" else _model_head(result)),
        f"samples    {result.samples_ns.size} timed after {result.warmup.get('iterations', 0)} warm-up"
        f"{_warmup_time(result)}{_dropped(s)}{_partial(result)}",
        "",
        "  " + " ".join(f"{c:>10}" for c in columns),
        "  " + " ".join(f"{format_duration(v):>10}" for v in values),
        "",
        "95% CI     "
        + "   ".join(
            f"{label} {_interval(*s.ci(key))}"
            for key, label in (("median_ns", "median"), ("p99_ns", "p99"), ("p999_ns", "p99.9"))
        ),
        *_over_time_lines(result),
        f"spread     std {format_duration(s.std_ns)}, CV {s.cv:.1%}, IQR {format_duration(s.iqr_ns)}, "
        f"{outliers} outliers ({s.outliers_low} low, {s.outliers_high} high; "
        + (f"{s.outliers_dropped} dropped)" if s.outliers_dropped else "kept)"),
        _throughput_line(result),
        *_compute_lines(result),
        _cold_start_line(result),
        f"timer      {format_duration(s.timer_overhead_ns)} per clock-read pair (included, not subtracted)",
        *_memory_lines(result),
        *_stopping_lines(result),
        *_scenario_lines(result),
        *_processes_lines(result),
        *(f"WARNING: {w.message}" for w in result.warnings),
    ]
    return "\n".join(lines)


def render_generation(result: Result) -> str:
    """The terminal report of a decoder's generations: the model and what each generation
    did, time to first token and per output token with their intervals and tails, tokens
    per second, sampling, the per-position curve and the positions far off it, the KV cache,
    memory and warnings."""
    if result.scenario != "single-stream":  # generation requests under load
        return render_generation_load(result, _model_head(result)[1:], _memory_lines(result))
    g = result.generation or {}
    s = result.stats
    ttft = g.get("ttft") or {}
    d = g.get("decoder") or {}
    e2e = (g.get("end_to_end") or {}).get("median_ns")
    return "\n".join(
        [
            f"model      {result.model.get('name')}  (a decoder: {d.get('caches')} cache tensors "
            f"{d.get('cache_type')} {d.get('cache_shape')}, {d.get('source')})",
            *_model_head(result)[1:],
            f"generation prompt {g.get('prompt_tokens')} tokens, {g.get('gen_tokens')} output tokens, "
            f"batch {g.get('batch')}: {g.get('generations')} generations timed{_partial(result)}",
            "",
            f"{'':<12}{'median':>10} {'p90':>10} {'p99':>10}   95% CI of the median",
            _figure_row(
                "TTFT",
                ttft.get("median_ns"),
                ttft.get("p90_ns"),
                ttft.get("p99_ns"),
                ttft.get("ci95_median_ns"),
            ),
            _figure_row("TPOT", s.median_ns, s.p90_ns, s.p99_ns, s.ci("median_ns")),
            "",
            *_over_time_lines(result),
            f"tokens/s   prompt {_tokens(g.get('prompt_tokens_per_s'))}, output "
            f"{_tokens(g.get('output_tokens_per_s'))} (one decode step), end to end "
            f"{_tokens(g.get('end_to_end_tokens_per_s'))} ({format_duration(e2e)} per generation)",
            f"sampling   greedy argmax {format_duration(g.get('sampling_median_ns'))} per token "
            f"(over {d.get('vocab') or '?'} logits; not in TTFT's call nor in TPOT)",
            *_position_lines(g),
            f"KV cache   {format_bytes(g.get('kv_cache_bytes'))} at {g.get('kv_cache_positions')} positions"
            + (" (one buffer shared by past and present)" if d.get("share_buffer") else ""),
            *_memory_lines(result),
            f"timer      {format_duration(s.timer_overhead_ns)} per clock-read pair (included, not "
            "subtracted)",
            *(f"WARNING: {w.message}" for w in result.warnings),
        ]
    )


def _figure_row(
    label: str, median: float | None, p90: float | None, p99: float | None, ci: Sequence[float | None] | None
) -> str:
    """One row of a generation's TTFT / TPOT table."""
    lo, hi = ci if ci else (None, None)
    return (
        f"{label:<12}{format_duration(median):>10} {format_duration(p90):>10} {format_duration(p99):>10}   "
        f"{_interval(lo, hi)}"
    )


def _tokens(per_s: float | None) -> str:
    return "-" if per_s is None else f"{per_s:,.0f}"


def _position_lines(g: Mapping[str, Any]) -> list[str]:
    """The per-position curve in one line (first and last decode positions), and the positions
    far off it and the single stalls."""
    curve = g.get("position_median_ns") or []
    decode = [(i, v) for i, v in enumerate(curve) if i > 0 and v is not None]
    if not decode:
        return []
    lines = [
        f"positions  decode step {decode[0][0]} {format_duration(decode[0][1])}, step {decode[-1][0]} "
        f"{format_duration(decode[-1][1])} (each step's median over the generations; step s reads "
        f"position {g.get('prompt_tokens', 0)} + s - 1)"
    ]
    off = g.get("off_curve") or {}
    slow = off.get("positions") or []
    if slow:
        shown = ", ".join(
            f"step {p['position']} at position {p.get('context_position', '?')} ({p['ratio']:.1f}x, "
            f"{format_duration(p['median_ns'])})"
            for p in slow[:5]
        )
        lines.append(
            f"SLOW POSITIONS {off.get('slow_count')}: {shown}, against the steps around them in "
            "every generation"
        )
    stalls = off.get("stalls") or []
    if stalls:
        w = stalls[0]
        lines.append(
            f"stalls     {off.get('stall_count')} single steps at 5x their position's median or more; "
            f"the worst: step {w['position']} (position {w.get('context_position', '?')}) of generation "
            f"{w['generation'] + 1}, "
            f"{format_duration(w['ns'])} ({w['ratio']:.1f}x)"
        )
    return lines


def _over_time_lines(result: Result) -> list[str]:
    """What the median's interval stands for (another run on this machine, or these pooled
    rounds), how much the machine's speed moved during the run (the monitor), and a run whose
    latency stayed at one level."""
    m = result.monitor
    if not m:
        return []
    over = m.get("over_time")
    lines = [_interval_meaning(result, over)] if over or m.get("parts") else []
    moved = m.get("speed_moved")
    states = len(m.get("state_levels_ns") or [])
    if moved is not None:
        lines.append(
            f"machine    speed moved {moved:.0%} during the run (a fixed probe timed {len(m['readings_ns'])} "
            f"times between slices; {states} state{'s' if states != 1 else ''})"
        )
    if over and over.get("one_state"):
        probe = f", though the probe saw {states} states" if states > 1 else ""
        lines.append(
            f"           the model's latency stayed at one level through the run{probe}: another run may "
            "land at a level this one never saw"
            + ("" if over.get("history_pairs") else ", and with no history of it the CI cannot include that")
        )
    return lines


def _interval_meaning(result: Result, over: Mapping[str, Any] | None) -> str:
    """The line under the CIs that says what the median's CI is for, and what it was made of."""
    if not over:
        parts = (result.monitor or {}).get("parts")
        return f"           the median's CI is for these {parts} rounds pooled, not for another run"
    pairs, windows = over.get("history_pairs") or 0, over.get("windows") or 0
    if pairs:
        source = f"this measurement's history on this machine: {pairs} pairs of runs"
    elif over.get("history_sessions"):
        source = f"this machine's history of other measurements ({over['history_sessions']} runs)"
    else:
        source = "no history of this machine yet: a prior for what one run cannot see"
    if windows >= 2:
        source += f"; this run's variation over {windows} windows"
    within = result.stats.ci95_median_within_ns
    return (
        f"           the median's CI is for another run as long as this one ({over.get('span_s', 0):.3g} s) "
        f"on this machine ({source})" + (f"; within this run {_interval(*within)}" if within else "")
    )


def _throughput_line(result: Result) -> str:
    """The scenario's calls per second (:func:`scenario_throughput`), and items per second for
    a batch."""
    from ..results.result import batch_of

    rate, how = scenario_throughput(result)
    batch = batch_of({"model": result.model})
    if batch <= 1 or not rate:
        return f"throughput {_rate(rate)} ({how})"
    return f"throughput {_rate(rate)} calls, {_rate(rate * batch)} items (batch {batch}; {how})"


def _model_head(result: Result) -> list[str]:
    """A model's result: the model and its bound inputs, the runtime, how the loop ran."""
    cfg = result.config
    loop = result.loop
    ort = result.environment.get("onnxruntime", {})
    session = result.session or {}
    threads = cfg.get("threads") or (
        f"{session['intra_op_threads']} (ONNX Runtime's default: one per physical core)"
        if session.get("intra_op_threads")
        else "default"
    )
    providers = ", ".join(p["name"] for p in cfg.get("providers", [])) or "CPUExecutionProvider"
    inputs = ", ".join(
        f"{i['name']} {'x'.join(map(str, i['bound_shape'])) or 'scalar'}"
        for i in result.model.get("inputs", [])
        if i.get("bound_shape") is not None  # a generation binds its inputs step by step
    )
    cache = loop.get("cache", "warm")
    if cache == "cold" and loop.get("flush_bytes"):
        cache += f" ({loop['flush_bytes'] / 2**20:.0f} MiB flushed before each call)"
    extras = []
    if loop.get("input_sets", 1) > 1:
        extras.append(f"{loop['input_sets']} input sets")
    if loop.get("pinned_cpu") is not None:
        extras.append(f"pinned to CPU {loop['pinned_cpu']}")
    if cfg.get("spin") is not None:
        extras.append("spinning" if cfg["spin"] else "no spinning")
    return [
        f"model      {result.model.get('name')}  ({inputs})",
        f"runtime    onnxruntime {ort.get('version', '?')}  providers: {providers}",
        f"loop       {_scenario_text(result)}, mode={cfg.get('mode')}, threads={threads}, "
        f"opt={cfg.get('graph_optimization')}, cache={cache}" + "".join(f", {e}" for e in extras),
    ]


def _callable_head(result: Result) -> list[str]:
    """A callable's result (inferspeed.timeit): its name, the calls per sample, the loop's cost."""
    loop = result.loop
    return [
        f"callable   {result.model.get('name')}  (timed in inferspeed's C++ loop)",
        f"loop       {loop.get('batch', 1)} call(s) per pair of clock reads; an empty callable takes "
        f"{format_duration(loop.get('loop_overhead_ns'))} per call here (included, not subtracted)",
    ]


def _warmup_time(result: Result) -> str:
    """How long the warm-up took, and whether it ended on steady latency (the default warm-up)."""
    w = result.warmup
    if not w.get("until_steady") or w.get("time_ns") is None:
        return ""
    if not w.get("steady"):
        how = "NOT steady at the cap"
    elif any(d.code == "warmup" for d in result.warnings):
        how = "steady by its own test, yet latency still fell once timing began: see the warning"
    else:
        how = "until steady"
    return f" ({format_duration(w['time_ns'])}, {how})"


def _dropped(s: Any) -> str:
    """The outliers left out of the figures (the warnings still see every sample)."""
    if not s.outliers_dropped:
        return ""
    return f"; the figures use {s.count} ({s.outliers_dropped} outliers dropped)"


def _partial(result: Result) -> str:
    """The mark of a partial result, saying when it was interrupted in the warm-up."""
    if not result.interrupted:
        return ""
    if result.loop.get("interrupted_in") == "warm-up":
        return "   [PARTIAL: interrupted in the warm-up; these are warm-up calls]"
    return "   [PARTIAL: interrupted]"


def _cold_start_line(result: Result) -> str:
    """Session creation and first run (a callable: its first warm-up call), and the iterations
    until latency was steady."""
    w = result.warmup
    settle = w.get("settle_iterations")
    timed = w.get("settle_timed_iterations") or 0
    if w.get("until_steady") and w.get("steady") is False and not timed:
        # The warm-up ended at its cap without steady chunks (the samples line says "NOT
        # steady"): no "steady after" from a looser test of the same calls beside it.
        steady = f", not steady within the {w.get('iterations', 0)} warm-up iterations"
    elif settle is None:
        steady = ""
    elif timed:
        steady = f", steady after {settle} iterations ({settle - timed} warm-up and {timed} timed)"
    else:
        steady = f", steady after {settle} warm-up iterations"
    if result.session:
        create = format_duration(result.session.get("create_ns"))
        first = format_duration(result.session.get("first_run_ns"))
        return f"session    created in {create}, first run {first}{steady}"
    return f"warm-up    first call {format_duration(result.warmup.get('first_iteration_ns'))}{steady}"


def _compute_lines(result: Result) -> list[str]:
    """GFLOP/s, worked out here from the multiply-adds and a figure the report shows, named in
    the line: one stream's at the table's median; a server's at the service line's median (the
    table's latency counts queueing too); offline at the throughput line's rate (every
    worker's calls)."""
    macs = (result.compute or {}).get("macs")
    if not macs:
        return []
    per_call = f"({_count(macs)} multiply-adds per call)"
    if result.scenario == "offline":
        rate, _ = scenario_throughput(result)
        if not rate:
            return []
        return [
            f"compute    {2.0 * macs * rate / 1e9:.1f} GFLOP/s at the {_rate(rate)} throughput {per_call}"
        ]
    median, what = result.stats.median_ns, "median"
    if result.scenario == "server":
        median, what = (
            (result.scenario_stats.get("service_stats") or {}).get("median_ns") or 0.0,
            "service median",
        )
    if median <= 0:
        return []
    return [
        f"compute    {2.0 * macs / median:.1f} GFLOP/s at the {what} {format_duration(median)} {per_call}"
    ]


def _memory_lines(result: Result) -> list[str]:
    m = result.memory
    if m is None or m.get("session_peak_delta_bytes") is None:
        return []
    return [
        f"memory     peak {format_bytes(m['session_peak_delta_bytes'])} creating the session, "
        f"{format_bytes(m.get('run_peak_delta_bytes'))} while running (above the "
        f"{format_bytes(m['rss_before_session_bytes'])} before it); weights "
        + format_bytes(m.get("weight_bytes", m.get("initializer_bytes")))
        + (
            f"; failed size attempts peaked {format_bytes(m['failed_attempts_peak_delta_bytes'])} apart"
            if m.get("failed_attempts_peak_delta_bytes") is not None
            else ""
        )
    ]


def _stopping_lines(result: Result) -> list[str]:
    st = result.stopping
    if st is None:
        return []
    widths = ", ".join(f"{k} ±{v:.2%}" for k, v in st["relative_halfwidths"].items() if v is not None)
    verdict = "met" if st["met"] else "NOT met"
    return [
        f"stopping   target ±{st['target_ci']:.2%}: {verdict} after {st['samples']} samples"
        + (f" ({widths})" if widths else "")
    ]


def _processes_lines(result: Result) -> list[str]:
    p = result.processes
    if p is None:
        return []
    medians = ", ".join(format_duration(m) for m in p["medians_ns"])
    return [f"processes  {p['count']} pooled; medians {medians} (spread {p['median_spread']:.1%})"]


def render_concurrency_table(results: list[Result]) -> str:
    """Throughput against latency, one row per concurrency."""
    lines = [f"{'workers':>8} {'throughput':>14} {'median':>10} {'p99':>10} {'p99.9':>10}"]
    for r in results:
        sc = r.scenario_stats
        rate = sc.get("throughput_per_s", r.stats.throughput_per_s)
        lines.append(
            f"{sc.get('concurrency', 1):>8} {_rate(rate):>14} {format_duration(r.stats.median_ns):>10} "
            f"{format_duration(r.stats.p99_ns):>10} {format_duration(r.stats.p999_ns):>10}"
        )
    return "\n".join(lines)


def render_capacity(found: CapacityResult) -> str:
    """The rates walked by ``inferspeed capacity`` and the capacity found, every FAIL with its
    reason; one line when the SLO is missed even at light load (no search ran)."""
    label = f"p{found.percentile:g}"
    light = found.light_load
    if light is not None and not found.met_at_light_load:
        lo, hi = light["ci95_ns"]
        return (
            f"not met even at light load: single-stream {label} is {format_duration(light['latency_ns'])} "
            f"(SLO {format_duration(found.slo_ns)}; 95% CI {_interval(lo, hi)} over {light['calls']} calls)"
        )
    lines = [f"SLO        {label} <= {format_duration(found.slo_ns)} with {found.concurrency} worker(s)"]
    if light is not None:
        lines.append(
            f"light load single-stream {label} {format_duration(light['latency_ns'])} "
            f"(95% CI {_interval(*light['ci95_ns'])}, {light['calls']} calls)"
        )
    lines.append(f"offline    {_rate(found.offline_throughput_per_s)} (upper bound of the search)")
    if found.min_requests:
        lines.append(f"steps      at least {found.min_requests} requests each, lengthened to hold them")
    lines += [
        "",
        f"{'offered':>11} {'achieved':>11} {'requests':>9} {label:>10} {'95% CI':>21} "
        f"{'seconds':>7}  verdict",
    ]
    for st in found.steps:
        lo, hi = st["ci95_ns"]
        verdict = step_verdict(st)
        lines.append(
            f"{_rate(st['qps']):>11} {_rate(st['achieved_qps']):>11} {st.get('requests', ''):>9} "
            f"{format_duration(st['latency_ns']):>10} {_interval(lo, hi):>21} {st['duration_s']:>7.3g}  "
            + verdict
        )
    cap = found.capacity_qps
    if cap:
        offline = found.offline_throughput_per_s
        share = f" ({cap / offline:.2f} x offline)" if offline else ""
        lines += ["", f"capacity   {_rate(cap)}{share}"]
    else:
        lines += ["", f"capacity   none: {found.note or 'even the lowest rate tried missed the SLO'}"]
    return "\n".join(lines)


def render_profile_latency(result: Result | Mapping[str, object]) -> list[str]:
    """The latency lines of a profiled result: the unprofiled median first (the model's
    latency), then the profiled one, secondary, with how much slower the profiler made each
    call; none without a profile. (A profile's summary mapping, which it once took, works
    until the next release, with a deprecation warning.)"""
    if isinstance(result, Mapping):
        import warnings

        warnings.warn(
            "render_profile_latency takes the profiled Result (its .profile); a profile's "
            "summary works until the next release",
            DeprecationWarning,
            stacklevel=2,
        )
    pr: Any = result if isinstance(result, Mapping) else result.profile
    if pr is None:
        return []
    over = pr.get("profiling_overhead")
    slower = (
        f", {over + 1.0:.2f}x the unprofiled ({over:+.0%}): the profiler's cost, not the model's"
        if over is not None
        else ""
    )
    ci = pr.get("unprofiled_ci95_median_ns") or [None, None]
    return [
        f"unprofiled median {format_duration(pr['unprofiled_median_ns'])} (95% CI {_interval(*ci)}): "
        "the model's latency, ONNX Runtime's profiler off",
        f"profiled   median {format_duration(pr['profiled_median_ns'])} with the profiler on{slower}; "
        f"ORT model_run median {_from_us(pr['model_run_median_us'])}",
    ]


def render_profile(result: Result, top: int = 15, latency: bool = True) -> str:
    """The unprofiled latency, then the profiled one (``latency``: these two lines, see
    :func:`render_profile_latency`), then the top ``top`` operator types and nodes (full node
    names, long ones wrapped onto continuation lines)."""
    pr = result.profile
    if pr is None:
        return "(no profile)"
    t = _from_us
    over = pr.get("profiling_overhead")
    lines = [
        *(render_profile_latency(result) if latency else []),
        f"profile    {pr['runs']} profiled calls, graph optimization {pr['graph_optimization']} "
        "(names are ONNX Runtime's, after fusion)",
    ]
    if over is not None and over > 0.25:
        lines.append(
            f"note       profiling made each call {over:.0%} slower: ONNX Runtime's profiler costs "
            "microseconds per node, so small nodes look larger than they are"
        )
    if pr.get("node_share") is not None:
        kernel = pr.get("kernel_share")
        lines.append(
            f"nodes      {pr['node_share']:.1%} of the profiled model time"
            + (
                f": kernels {kernel:.1%}, dispatch {pr['node_share'] - kernel:.1%}"
                if kernel is not None
                else ""
            )
            + " (a node's time is its kernel and its share of ONNX Runtime's executor work around it)"
        )
    if pr["runs"] < pr["runs_expected"]:
        lines.append(
            f"note       ONNX Runtime recorded {pr['runs']} of {pr['runs_expected']} timed calls (its event "
            "limit: subgraphs that iterate write more events per call); --iterations N profiles fewer"
        )
    lines += [
        "",
        *_time_table(
            pr["by_op_type"],
            top,
            "operator types",
            [("operator type", "op_type", -28), ("nodes", "nodes", 6)],
        ),
    ]
    outside = pr.get("outside_nodes_us")
    if outside is not None and pr["model_time_us"] > 0:
        lines.append(
            f"{'(ORT run outside the nodes)':<28} {'':>6} {'':>9} {t(outside):>10} {'':>10} {'':>10} "
            f"{_share(outside / pr['model_time_us']):>7}"
        )
    lines += [
        "",
        *_time_table(pr["by_node"], top, "nodes", [("node", "node", -36), ("op type", "op_type", -18)]),
    ]
    bodies = [row for row in pr["by_node"] if row.get("inclusive_share") is not None]
    for row in bodies[:top]:
        lines.append(
            f"subgraphs  {row['node']} ({row['op_type']}) with its subgraphs' nodes: "
            f"{_share(row['inclusive_share'])} of the model time"
        )
    if pr.get("trace"):
        lines += ["", f"trace      {pr['trace']} (open in Perfetto or chrome://tracing)"]
    return "\n".join(lines)


def _from_us(v: float | None) -> str:
    """A profile time (ORT writes microseconds) with units."""
    return format_duration(None if v is None else v * 1000.0)


def _time_table(
    rows: list[dict[str, Any]], top: int, what: str, columns: list[tuple[str, str, int]]
) -> list[str]:
    """A profile table: the ``columns`` (title, key, width; a negative width is a text column,
    left-aligned, a longer value wrapped onto continuation lines, never cut), then calls,
    total, mean (kernel and dispatch), mean kernel time and share; the first ``top`` rows and
    how many more there are."""
    t = _from_us
    head = " ".join(f"{title:<{-width}}" if width < 0 else f"{title:>{width}}" for title, _, width in columns)
    lines = [f"{head} {'calls':>9} {'total':>10} {'mean':>10} {'kernel':>10} {'share':>7}"]
    for row in rows[:top]:
        cells = [
            _wrap(str(row[key]), -width) if width < 0 else [f"{row[key]:>{width}}"]
            for _, key, width in columns
        ]
        for i in range(max(len(c) for c in cells)):
            text = " ".join(
                f"{c[i] if i < len(c) else '':<{abs(width)}}"
                for c, (_, _, width) in zip(cells, columns, strict=True)
            )
            if i:
                lines.append(text.rstrip())
                continue
            times = f"{t(row['total_us']):>10} {t(row['mean_us']):>10} {t(row.get('kernel_mean_us')):>10}"
            lines.append(f"{text} {row['calls']:>9} {times} {_share(row['share']):>7}")
    if not rows:
        lines.append(f"  (no {what}: ONNX Runtime ran no node in the timed calls)")
    elif len(rows) > top:
        lines.append(f"  ... {len(rows) - top} more {what}")
    return lines


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in pieces of at most ``width`` characters that join back to it exactly, each
    broken after a separator ("/", ".", "_", "-", ":", ">") in its second half when it has one."""
    pieces = []
    while len(text) > width:
        cut = max(text[:width].rfind(c) for c in "/._-:>") + 1
        if cut <= width // 2:
            cut = width
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text]


def _share(v: float | None) -> str:
    return "?" if v is None else f"{v:.1%}"


def render_comparisons(comparisons: Sequence[Verdict]) -> str:
    """Comparisons of one metric as that metric reads them (:data:`TEXT`); latency's when there
    are none."""
    metrics = {c.metric for c in comparisons} or {Comparison.metric}
    if len(metrics) > 1:
        raise ValueError(f"comparisons of one metric at a time, not {sorted(metrics)}")
    return TEXT[metrics.pop()].comparisons(comparisons)


def render_latency_comparisons(comparisons: Sequence[Comparison]) -> str:
    """Ratio of medians and p99s with intervals, p-value, Hodges-Lehmann shift and verdict."""
    lines = [
        f"{'candidate':<28} {'median ratio (95% CI)':>24} {'p99 ratio (95% CI)':>24} "
        f"{'p':>9} {'shift (95% CI)':>30}  verdict"
    ]
    for c in comparisons:
        lo, hi = c.ratio_median_ci
        plo, phi = c.ratio_p99_ci
        slo, shi = c.hl_shift_ci_ns
        shift = f"{format_duration(c.hl_shift_ns)} ({format_duration(slo)}..{format_duration(shi)})"
        lines.append(
            f"{c.candidate[-28:]:<28} {f'{c.ratio_median:.3f} ({lo:.3f}-{hi:.3f})':>24} "
            f"{f'{c.ratio_p99:.3f} ({plo:.3f}-{phi:.3f})':>24} {c.p_value:>9.2g} {shift:>30}  "
            f"{c.verdict}{_on_statistic(c)} (vs {c.baseline}, threshold {c.threshold:.0%})"
        )
    for c in comparisons:
        statistic = c.statistic
        if statistic != "median":
            ratio, (lo, hi), _ = c.decided_ratio
            paired = f", paired over {c.rounds} rounds" if c.rounds else ""
            lines.append(f"  {c.candidate[-28:]}: {statistic} ratio {ratio:.3f} ({lo:.3f}-{hi:.3f}){paired}")
        states = c.by_state
        if states:
            each = ", ".join(
                f"{format_duration(st['probe_ns'])} probe ({st['rounds']} rounds): {st['ratio']:.3f} "
                f"({st['ratio_ci'][0]:.3f}-{st['ratio_ci'][1]:.3f})"
                for st in states
            )
            lines.append(f"  {c.candidate[-28:]}: by machine state: {each}")
        if c.method == "machine-variation" and (c.machine_variation or 0.0) > c.threshold:
            lines.append(
                f"  {c.candidate[-28:]}: the machine's speed varied {c.machine_variation:.0%} within "
                "these runs, so separate runs cannot resolve less; measure both now, interleaved "
                "(inferspeed gate BASE.onnx NEW.onnx)"
            )
    return "\n".join(lines)


#: What a generation's comparison decided on, in words (GenerationComparison.on).
_GENERATION_ON = {"tpot": "TPOT", "ttft": "TTFT", "output_tokens_per_s": "output tokens/s"}


#: The tables of a generation's comparison: (key of ``also`` or "" for the comparison's own
#: figures, title), for single-stream generations and for requests under load.
_GENERATION_TABLES = {
    None: (
        ("", "time per output token (TPOT, the decode steps)"),
        ("ttft", "time to first token (TTFT, the prefill and its sampling)"),
    ),
    "load": (
        ("", "time per output token (TPOT, each completed request's: its last token from its first)"),
        ("ttft", "time to first token (TTFT, each request's, {ttft_from})"),
        ("itl", "inter-token latency (ITL, every gap between two tokens of a request)"),
    ),
}


def render_generation_comparisons(comparisons: Sequence[Comparison]) -> str:
    """Generations compared: the time per output token, then the time to first token (and for
    requests under load their inter-token latencies), each as latencies read; each table says
    whether the verdict is on it (``on``), and a verdict on output tokens/s is said under them."""
    on = {str(getattr(c, "on", "tpot")) for c in comparisons}
    load = next((str(r) for c in comparisons if (r := getattr(c, "requests", None))), None)
    decides = " (what the verdict is on)"
    ttft_from = "from its start" if load == "offline" else "from its scheduled arrival"
    lines: list[str] = []
    if load is not None:
        lines.append(f"generation requests under load ({load}): compared per completed request, never paired")
    for key, title in _GENERATION_TABLES[None if load is None else "load"]:
        found = list(comparisons) if not key else [a for c in comparisons if (a := dict(c.also).get(key))]
        if not found:
            continue
        mark = decides if (key or "tpot") in on else ""
        lines += ([""] if lines and key else []) + [f"{title.format(ttft_from=ttft_from)}{mark}:"]
        lines.append(render_latency_comparisons(found))
    for c in comparisons:
        if getattr(c, "on", "tpot") != "tpot":
            ratio, (lo, hi), _ = c.decided_ratio
            lines.append(
                f"  {c.candidate[-28:]}: verdict on {_GENERATION_ON.get(str(getattr(c, 'on', '')), '?')}: "
                f"ratio {ratio:.3f} (95% CI {lo:.3f}-{hi:.3f})"
            )
    return "\n".join(lines)


def _on_statistic(c: Comparison) -> str:
    """ " on the p99" (etc.) when the verdict is on another statistic than the median."""
    return "" if c.statistic == "median" else f" on the {c.statistic}"


def render_sweep(found: SweepResult) -> str:
    """One row per cell (labelled as :func:`~inferspeed.results.sweepfile.cell_label` does),
    its figures as the sweep's metric reads them (:data:`TEXT`; latency: median, p99, median
    per sample and samples/s; generation: llama-bench's pp and tg tokens/s ± SD, TTFT, TPOT),
    the best by the chosen ranking marked with *, then the metric's notes on its figures."""
    best = found.best
    text = TEXT[found.metric]
    width = max([42, *(len(e.label) for e in found.entries)])
    lines = [f"{'cell':<{width + 2}} {text.sweep_head}"]
    for e in found.entries:
        if e.error is not None or e.result is None:
            lines.append(f"  {e.label:<{width}} error: {e.error}")
            continue
        lines.append(f"{'*' if e is best else ' '} {e.label:<{width}} {text.sweep_row(e)}")
    if best is not None:
        lines.append(f"best by {found.by}: {best.label}")
    for note in text.sweep_notes:
        lines += textwrap.wrap(note, 100, break_on_hyphens=False)
    return "\n".join(lines)


#: The widths of a generation cell's columns (:data:`~inferspeed.report.exports.SWEEP_TABLES`).
_GENERATION_WIDTHS = (5, 18, 6, 16, 9, 9, 6, 9)


def render_generation_sweep_row(line: SweepLine) -> str:
    """A generation cell's figures: llama-bench's tests ``pp{P}`` (prompt tokens/s) and
    ``tg{G}`` (output tokens/s), each mean ± SD over the cell's generations, then the medians
    of TTFT and TPOT and how many generations were timed."""
    cells = SWEEP_TABLES["generation"].cells(line)
    return " ".join(f"{cell:>{w}}" for cell, w in zip(cells, _GENERATION_WIDTHS, strict=True))


def render_latency_sweep_row(line: SweepLine) -> str:
    """A latency cell's figures: median, p99, median per sample, samples per second."""
    result = line.result or {}
    st, batch = result["stats"], line.batch
    samples_per_s = (line.value(("stats", "throughput_per_s")) or 0) * batch  # a load's: all workers'
    return (
        f"{format_duration(st['median_ns']):>10} {format_duration(st['p99_ns']):>10} "
        f"{format_duration(st['median_ns'] / batch):>11} {_rate(samples_per_s):>12}"
    )


def render_tradeoff(found: TradeoffResult) -> str:
    """Speedup (with its interval and verdict) beside fidelity, Pareto-optimal rows marked with
    *; where each variant's file is and which inputs the fidelity was measured on."""
    speed = {"reference": "reference", "faster": "faster", "slower": "slower"}
    lines = [
        f"  {'variant':<16} {'median':>10} {'speedup (95% CI)':>22} {'max abs err':>12} {'mean abs err':>13} "
        f"{'rel L2':>9} {'cosine':>9} {'top-1':>7}  speed"
    ]
    for r in found.rows:
        f = r["fidelity"]
        lo, hi = r["speedup_ci"]
        ratio = "reference" if r["reference"] else f"{r['speedup']:.2f}x ({lo:.2f}-{hi:.2f})"
        top1 = "-" if f["top1_agreement"] is None else f"{f['top1_agreement']:.1%}"
        mark = "*" if r["pareto"] else " "
        lines.append(
            f"{mark} {r['label']:<16} {format_duration(r['median_ns']):>10} {ratio:>22} "
            f"{f['max_abs_error']:>12.3g} {f['mean_abs_error']:>13.3g} {f['relative_l2_error']:>9.2e} "
            f"{f['cosine_similarity']:>9.6f} {top1:>7}  "
            f"{speed.get(r.get('verdict', ''), 'not significantly faster')}"
        )
    lines.append(
        "* Pareto-optimal among the base and the variants significantly faster or slower than it: "
        "no other of them is both faster and more faithful (relative L2); a variant not "
        "significantly faster is never marked"
    )
    for r in found.rows:
        if r["reference"]:
            continue
        where = r.get("path")
        kept = "" if not where else f" ({where})" if r["how"] == "given" else f"; saved as {where}"
        lines.append(f"  {r['label']}: {r['how']}{kept}")
    lines.append(_fidelity_inputs_line(found.fidelity_inputs))
    return "\n".join(lines)


def _fidelity_inputs_line(fi: Mapping[str, Any]) -> str:
    """Which inputs the variants' outputs were compared with the base's on."""
    inputs = fi.get("inputs") or {}
    if fi.get("source") == "file":
        mine = [n for n, src in inputs.items() if src == "file"]
        rest = [n for n, src in inputs.items() if src != "file"]
        return (
            f"fidelity measured on the arrays of {fi.get('file')} as one input set "
            f"({', '.join(mine) or 'no input'} from the file"
            + (f"; {', '.join(rest)} generated" if rest else "")
            + ")"
        )
    if not fi:
        return "fidelity measured on generated input sets"
    return (
        f"fidelity measured on {fi.get('sets')} generated input sets (seed {fi.get('seed')}); "
        "--inputs FILE.npz measures it on your own arrays"
    )


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f}"


def render_info(info: InfoDocument) -> str:
    def shape(dims: Any) -> str:
        if dims is None:
            return "(no shape)"
        return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"

    def nodes(counts: Mapping[str, int]) -> str:
        total = sum(counts.values())
        return ", ".join(f"{n} {op}" for op, n in counts.items()) + (" nodes" if total > 1 else " node")

    def macs_lines() -> list[str]:
        """The MAC count, what it leaves out, and the input shapes it was counted at (and why)."""
        macs, at = info.get("macs"), info.get("macs_at")
        if macs is None:
            head = "MACs         unknown (shape inference failed)"
        else:
            by_op = ", ".join(f"{op} {_count(v)}" for op, v in macs["by_op_type"].items())
            parts = [by_op or "no Gemm/MatMul/Conv", *(["dynamic dims as 1"] if at is None else [])]
            if macs.get("uncounted"):
                parts.append(f"{nodes(macs['uncounted'])} not counted: unknown shapes; give --shape")
            if macs.get("subgraph_nodes"):
                parts.append(f"{nodes(macs['subgraph_nodes'])} in If/Loop/Scan bodies not counted")
            head = f"MACs         {_count(macs['total'])} ({'; '.join(parts)})"
        lines = [head]
        if at:
            bound = (f"{name} {'x'.join(str(d) for d in dims) or 'scalar'}" for name, dims in at.items())
            lines.append("  at         " + ", ".join(bound))
        return [*lines, *(f"  {notice}" for notice in info.get("macs_notices") or ())]

    lines = [
        f"model        {info['path']}",
        f"size         {info['size_bytes']:,} bytes   ir_version {info['ir_version']}   "
        f"opsets {', '.join(f'{k} {v}' for k, v in info['opsets'].items())}",
        f"producer     {info.get('producer') or '-'}",
        f"parameters   {info['parameters']:,} in {info['initializers']} initializers"
        + (f" ({info['external_initializers']} external)" if info["external_initializers"] else "")
        + (f" and {info['constants']} Constant nodes" if info.get("constants") else ""),
        "inputs",
        *(f"  {v['name']:<24} {v['type']:<10} {shape(v['shape'])}" for v in info["inputs"]),
        "outputs",
        *(f"  {v['name']:<24} {v['type']:<10} {shape(v['shape'])}" for v in info["outputs"]),
        *macs_lines(),
        f"operators    {info['nodes']} nodes",
        *(f"  {op:<24} {n}" for op, n in info["operators"].items()),
    ]
    return "\n".join(lines)


def _gate_side_line(label: str, result: Result, statistic: str) -> str:
    """One side of a latency gate in a line: median with its interval, the decided statistic
    when another, p99, samples, what was noticed."""
    s = result.stats
    lo, hi = s.ci95_median_ns
    ci = f" (95% CI {format_duration(lo)}-{format_duration(hi)})" if lo is not None and hi is not None else ""
    codes = ", ".join(w.code for w in result.warnings)
    decided = (
        ""
        if statistic in ("median", "p99")
        else f", {statistic} {format_duration(getattr(s, f'{statistic}_ns'))}"
    )
    return (
        f"{label}: median {format_duration(s.median_ns)}{ci}{decided}, p99 {format_duration(s.p99_ns)}, "
        f"{s.count} samples" + (f"; noticed: {codes}" if codes else "")
    )


def _gate_pairing_line(verdict: GateVerdict, c: Comparison, pooled: Mapping[str, float] | None = None) -> str:
    """How the gate's ratios are made from the rounds, and what the side lines' pooled figures
    give (``pooled``: by name; None: the median's and the decided statistic's of the sides'
    samples), so a reader sees both: a machine whose speed moved between rounds moves the
    pooled figures, not the paired ratios."""
    if pooled is None:
        pooled = {
            name: getattr(verdict.candidate.stats, f"{name}_ns")
            / getattr(verdict.baseline.stats, f"{name}_ns")
            for name in dict.fromkeys(("median", c.statistic))
        }
    given = ", ".join(f"{name} {ratio:.3f}" for name, ratio in pooled.items())
    seed = "" if verdict.seed is None else f", seed {verdict.seed}"
    tails = "" if c.p99_blocks is None else f"; the p99's over {c.p99_blocks} blocks of rounds"
    return (
        f"paired over {verdict.rounds} interleaved rounds (random order{seed}); a ratio is the median of "
        f"the per-round ratios (candidate / baseline in one round){tails}; the pooled figures above give "
        f"{given}. Ratios against {c.baseline}:"
    )


def render_latency_gate(verdict: GateVerdict) -> str:
    """A latency gate: each side in a line, how the paired ratios are made (and what the side
    lines' figures give), the paired comparison, what the verdict leaves out."""
    c = verdict.comparison
    if not isinstance(c, Comparison):
        raise TypeError(f"a latency gate holds a latency comparison, not {type(c).__name__}")
    lines = [
        _gate_side_line(c.baseline, verdict.baseline, c.statistic),
        _gate_side_line(c.candidate, verdict.candidate, c.statistic),
        _gate_pairing_line(verdict, c),
        render_comparisons([c]),
        *(f"note: {note}" for note in verdict.notes),
    ]
    return "\n".join(lines)


def _generation_side(label: str, result: Result, on: str, c_statistic: str) -> tuple[str, float]:
    """One side of a generation gate in a line, led by the figure the gate decides on (TTFT:
    its median over the side's generations with its interval and p99; output tokens/s: the
    batch over the median decode step; TPOT: the decode steps, as a latency gate's side), with
    the TPOT after it; and that figure (ns, or tokens/s) for the pooled ratio."""
    s = result.stats
    if on == "ttft":
        t = summarize(ttft_samples(result))
        lo, hi = t.ci95_median_ns
        ci = (
            f" (95% CI {format_duration(lo)}-{format_duration(hi)})"
            if lo is not None and hi is not None
            else ""
        )
        return (
            f"{label}: TTFT median {format_duration(t.median_ns)}{ci}, p99 {format_duration(t.p99_ns)}, "
            f"{t.count} generations; TPOT median {format_duration(s.median_ns)}, {s.count} decode steps"
        ), t.median_ns
    if on == "output_tokens_per_s":
        batch = int((result.generation or {}).get("batch") or 1)
        rate = batch * 1e9 / s.median_ns if s.median_ns > 0 else 0.0
        return (
            f"{label}: output tokens/s {rate:,.1f} (batch {batch} over the median decode step "
            f"{format_duration(s.median_ns)}), TPOT p99 {format_duration(s.p99_ns)}, {s.count} decode steps"
        ), rate
    line = _gate_side_line(label, result, c_statistic)
    return f"{label}: TPOT {line[len(label) + 2 :]}", s.median_ns


def render_generation_gate(verdict: GateVerdict) -> str:
    """A gate of generations: each side in a line led by the decided figure (TPOT, TTFT or
    output tokens/s), how the paired ratios are made (and the pooled ratio of that figure),
    the TPOT and TTFT comparisons, what the verdict leaves out."""
    c = verdict.comparison
    if not isinstance(c, Comparison):
        raise TypeError(f"a generation gate holds a latency comparison, not {type(c).__name__}")
    on = str(getattr(c, "on", "tpot"))
    (base_line, base), (cand_line, cand) = (
        _generation_side(c.baseline, verdict.baseline, on, c.statistic),
        _generation_side(c.candidate, verdict.candidate, on, c.statistic),
    )
    pooled: dict[str, float] | None = {_GENERATION_ON.get(on, on): cand / base if base > 0 else math.nan}
    if on == "tpot" and c.statistic != "median":
        pooled = None  # the decode steps' statistic: a latency gate's pooled figures
    lines = [
        base_line,
        cand_line,
        _gate_pairing_line(verdict, c, pooled),
        render_comparisons([c]),
        *(f"note: {note}" for note in verdict.notes),
    ]
    return "\n".join(lines)


def latency_decision(c: Comparison, limit: float) -> tuple[bool, str]:
    """Whether the candidate is significantly slower by more than ``limit`` on the decided
    statistic, and the gate's line saying so."""
    ratio, (lo, hi), _ = c.decided_ratio
    figures = f"{c.statistic} ratio {ratio:.3f} (95% CI {lo:.3f}-{hi:.3f})"
    if c.slower_by_more_than(limit):
        return True, (
            f"gate: FAIL: {c.candidate} is slower than {c.baseline}: {figures}, "
            f"more than the {limit:.1%} allowed"
        )
    return False, (
        f"gate: pass: {figures}; fails when the interval excludes 1 and the ratio exceeds {1 + limit:.3f}"
    )


def generation_decision(c: Comparison, limit: float) -> tuple[bool, str]:
    """A gate of generations: whether the candidate is worse by more than ``limit`` on what it
    decided on (TPOT or TTFT: slower; output tokens/s: fewer), and the gate's line saying so."""
    on = str(getattr(c, "on", "tpot"))
    name = _GENERATION_ON.get(on, on)
    ratio, (lo, hi), _ = c.decided_ratio
    figures = f"{name} ratio {ratio:.3f} (95% CI {lo:.3f}-{hi:.3f})"
    fewer = on == "output_tokens_per_s"
    if c.worse_by_more_than(limit):
        worse = "a drop of" if fewer else "slower by"
        return True, (
            f"gate: FAIL: {c.candidate} is slower than {c.baseline}: {figures}, {worse} more than the "
            f"{limit:.1%} allowed"
        )
    rule = f"below {1 - limit:.3f}" if fewer else f"exceeds {1 + limit:.3f}"
    return False, f"gate: pass: {figures}; fails when the interval excludes 1 and the ratio {rule}"


@dataclass(frozen=True)
class MetricText:
    """How the results of one metric read: one result, comparisons, a gate, a gate's decision
    (whether it failed, and its line)."""

    result: Callable[[Result], str]
    comparisons: Callable[[Sequence[Any]], str]
    gate: Callable[[GateVerdict], str]
    decision: Callable[[Any, float], tuple[bool, str]]
    #: A sweep's table: the head of its figures' columns, and a measured cell's figures; the
    #: notes printed under it.
    sweep_head: str
    sweep_row: Callable[[SweepLine], str]
    sweep_notes: tuple[str, ...] = ()


#: The text of each metric, by the metric's name.
TEXT: Mapping[str, MetricText] = MappingProxyType(
    {
        "latency": MetricText(
            render_latency,
            render_latency_comparisons,
            render_latency_gate,
            latency_decision,
            f"{'median':>10} {'p99':>10} {'per sample':>11} {'samples/s':>12}",
            render_latency_sweep_row,
        ),
        "generation": MetricText(
            render_generation,
            render_generation_comparisons,
            render_generation_gate,
            generation_decision,
            " ".join(
                f"{title:>{w}}"
                for title, w in zip(SWEEP_TABLES["generation"].titles, _GENERATION_WIDTHS, strict=True)
            ),
            render_generation_sweep_row,
            GENERATION_SWEEP_NOTES,
        ),
        "instructions": MetricText(
            render_instructions,
            render_instruction_comparisons,
            render_instruction_gate,
            instruction_decision,
            f"{'instructions':>14}",
            render_instruction_sweep_row,
        ),
    }
)


def render_gate(verdict: GateVerdict) -> str:
    """What a gate measured and how the two compare, as its metric reads (:data:`TEXT`)."""
    return TEXT[verdict.comparison.metric].gate(verdict)


def gate_decision(c: Verdict, limit: float) -> tuple[bool, str]:
    """Whether ``c``'s candidate is worse than allowed by ``limit``, and the line that says so
    (``gate: FAIL: ...`` or ``gate: pass: ...``)."""
    return TEXT[c.metric].decision(c, limit)
