"""The terminal report of a decoder's generation requests under load (the server or offline
scenario; :mod:`inferspeed.measure.generation_load`): the load, each request's time to first
token, time per output token, inter-token latency, end-to-end time and queue wait, the rates
served, goodput against the SLO and which limit each miss broke, and the streams' service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..analysis.capacity import GenerationCapacityResult
from ..results.result import Result
from ..units import format_bytes, format_duration

__all__ = ["render_generation_capacity", "render_generation_load", "step_verdict"]

#: The rows of the requests' table: (label, key of the generation record).
ROWS = (
    ("TTFT", "ttft"),
    ("TPOT", "tpot"),
    ("ITL", "itl"),
    ("end to end", "end_to_end"),
    ("queue wait", "queue"),
)


def _row(label: str, stats: Mapping[str, Any] | None) -> str:
    s = stats or {}
    cells = (s.get("median_ns"), s.get("p90_ns"), s.get("p99_ns"), s.get("max_ns"))
    return f"{label:<12}" + " ".join(f"{format_duration(v) if v is not None else '-':>10}" for v in cells)


def _streams(count: object) -> str:
    return f"{count} stream" + ("" if count == 1 else "s")


def _per_s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}/s"


def _interval(lo: float | None, hi: float | None) -> str:
    return (
        f"{format_duration(lo) if lo is not None else '?'}–{format_duration(hi) if hi is not None else '?'}"
    )


def _lateness(stats: Mapping[str, Any] | None) -> list[str]:
    """The scheduler's lateness (requests that found a stream idle), where there were any."""
    if not stats:
        return []
    return [
        f"scheduler  lateness median {format_duration(stats['median_ns'])}, "
        f"p99 {format_duration(stats['p99_ns'])}"
    ]


def _range(values: Sequence[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi} (mean {sum(values) / len(values):.3g})"


def _requests_line(g: Mapping[str, Any], partial: str) -> str:
    """What each request generates: the plan's lengths, or (``request_lengths``) the range and
    mean of the started requests' own and where they came from."""
    tail = f"batch {g.get('batch')}; {_streams(g.get('streams'))}{partial}"
    how = g.get("request_lengths")
    if not how:
        return (
            f"requests   each a generation of prompt {g.get('prompt_tokens')} tokens, {g.get('gen_tokens')} "
            f"output tokens, {tail}"
        )
    every = range(len(g["request_gen_tokens"]))
    started = [i for i, t in enumerate(g.get("start_ns") or []) if t >= 0] or every
    prompt = [g["request_prompt_tokens"][i] for i in started]
    output = [g["request_gen_tokens"][i] for i in started]
    source = (
        f"spread ±{how['spread']:.0%}"
        if how.get("source") == "spread"
        else f"from {how.get('path')}, {how.get('lines')} lengths"
    )
    if not prompt:
        return f"requests   lengths varied ({source}), {tail}"
    lengths = f"prompt {_range(prompt)}, output {_range(output)} tokens"
    return f"requests   varied lengths: {lengths}, {source}; {tail}"


def _load_line(result: Result, g: Mapping[str, Any]) -> str:
    sc = result.scenario_stats
    if result.scenario == "offline":
        return (
            f"load       every request queued at the start, {_streams(sc.get('concurrency'))} back to back "
            f"for {sc.get('duration_s', 0):g} s; TTFT counts from the request's start"
        )
    return (
        f"load       offered {_per_s(sc.get('offered_qps'))}, achieved {_per_s(sc.get('achieved_qps'))} "
        f"({g.get('completed')} of {g.get('requests')} requests); TTFT counts from the scheduled arrival"
    )


def _slo_lines(slo: Mapping[str, Any] | None) -> list[str]:
    """Goodput against the per-request limits, the misses by limit, and each percentile limit
    with its verdict; none without an SLO."""
    if not slo:
        return []
    limits = ", ".join(f"{k} <= {format_duration(v)}" for k, v in slo["limits_ns"].items())
    missed = slo.get("missed") or {}
    both = f" ({missed['both']} missed both)" if missed.get("both") else ""
    share = slo.get("met_share")
    lines = [
        f"SLO        {limits} per request: goodput {_per_s(slo.get('goodput_per_s'))} "
        f"({slo.get('met')} of {slo.get('requests')} requests"
        + (f", {share:.1%}" if share is not None else "")
        + ")",
        "           missed: "
        + (", ".join(f"{k} {n}" for k, n in missed.items() if k != "both") or "none")
        + both,
    ]
    for key, p in (slo.get("percentiles") or {}).items():
        lo, hi = p["ci95_ns"]
        value = p.get("value_ns")
        ci = _interval(lo, hi)
        verdict = "met" if p["met"] else "MISSED"
        if not p.get("decided"):
            verdict += " (the interval straddles the limit)"
        lines.append(
            f"           {key} {format_duration(value) if value is not None else '-'} against "
            f"{format_duration(p['limit_ns'])} (95% CI {ci}): {verdict}"
        )
    return lines


def render_generation_load(result: Result, head: Sequence[str], tail: Sequence[str] = ()) -> str:
    """The report of ``result`` (metric generation, scenario server or offline). ``head``: the
    runtime and loop lines as any model's report has them; ``tail``: its memory lines."""
    g = result.generation or {}
    sc = result.scenario_stats
    d = g.get("decoder") or {}
    service = sc.get("service_stats") or {}
    partial = " (interrupted: partial)" if result.interrupted else ""
    return "\n".join(
        [
            f"model      {result.model.get('name')}  (a decoder: {d.get('caches')} cache tensors "
            f"{d.get('cache_type')} {d.get('cache_shape')}, {d.get('source')})",
            *head,
            _requests_line(g, partial),
            _load_line(result, g),
            "",
            f"{'':<12}{'median':>10} {'p90':>10} {'p99':>10} {'max':>10}",
            *(_row(label, g.get(key)) for label, key in ROWS),
            "",
            f"rate       {_per_s(sc.get('throughput_per_s'))} requests, "
            f"{_per_s(sc.get('output_tokens_per_s'))} output tokens; one stream alone "
            f"{format_duration(g.get('single_generation_ns'))} per generation",
            *_slo_lines(g.get("slo")),
            f"service    median {format_duration(service.get('median_ns'))}, p99 "
            f"{format_duration(service.get('p99_ns'))} per request (its start to its last token)",
            *_lateness(sc.get("scheduler_lateness_stats")),
            f"KV cache   {format_bytes(g.get('kv_cache_bytes'))} in all ({_streams(g.get('streams'))}, "
            f"{g.get('kv_cache_positions')} positions each)",
            *tail,
            *(f"WARNING: {w.message}" for w in result.warnings),
        ]
    )


def _rate(per_s: float | None) -> str:
    return "-" if per_s is None else f"{per_s:,.1f}/s"


def _light_load_text(light: Mapping[str, Any]) -> str:
    """Each limit's single-stream percentile with its interval."""
    return ", ".join(
        f"{key} {format_duration(f['value_ns'])} (95% CI {_interval(*f['ci95_ns'])})"
        for key, f in light["limits"].items()
    )


def step_verdict(st: Mapping[str, object]) -> str:
    """A capacity step's verdict column: pass or FAIL, with the reason of a failure or of a
    verdict decided on the estimate, and the mark of the rate found's re-run."""
    verdict = "pass" if st["passed"] else "FAIL"
    reason = str(st.get("reason") or "")
    if reason and (not st["passed"] or reason.startswith("decided")):
        return f"{verdict}: {reason}"
    return f"{verdict} (re-run of the rate found)" if st.get("confirm") else verdict


def render_generation_capacity(found: GenerationCapacityResult) -> str:
    """The rates of generation requests walked by ``inferspeed capacity`` and the capacity
    found, every FAIL with its reason; one line when a limit is missed even by generations one
    at a time (no search ran)."""
    light = found.light_load
    if light is not None and not found.met_at_light_load:
        missed = [(k, f) for k, f in light["limits"].items() if f["value_ns"] > f["limit_ns"]]
        return "not met even at light load: " + "; ".join(
            f"single-stream {key} is {format_duration(f['value_ns'])} "
            f"(limit {format_duration(f['limit_ns'])}; 95% CI {_interval(*f['ci95_ns'])} "
            f"over {light['generations']} generations)"
            for key, f in missed
        )
    keys = [lim.key for lim in found.limits]
    limits = ", ".join(f"{lim.key} <= {format_duration(lim.limit_ns)}" for lim in found.limits)
    lines = [f"SLO        {limits} per request, {_streams(found.concurrency)}"]
    if light is not None:
        lines.append(
            f"light load single stream {_light_load_text(light)} over {light['generations']} generations"
        )
    lines.append(f"offline    {_rate(found.offline_throughput_per_s)} requests (upper bound of the search)")
    if found.min_requests:
        lines.append(f"steps      at least {found.min_requests} requests each, lengthened to hold them")
    lines += ["", f"{'offered':>11} {'achieved':>11} {'requests':>9} " + " ".join(f"{k:>10}" for k in keys)
              + f" {'seconds':>7}  verdict"]  # fmt: skip
    for st in found.steps:
        verdict = step_verdict(st)
        values = " ".join(f"{format_duration(st['limits'][k]['value_ns']):>10}" for k in keys)
        lines.append(
            f"{_rate(st['qps']):>11} {_rate(st['achieved_qps']):>11} {st.get('requests', ''):>9} {values} "
            f"{st['duration_s']:>7.3g}  {verdict}"
        )
    cap, offline = found.capacity_qps, found.offline_throughput_per_s
    if cap:
        share = f" ({cap / offline:.2f} x offline)" if offline else ""
        lines += ["", f"capacity   {_rate(cap)} requests{share}"]
    else:
        lines += ["", f"capacity   none: {found.note or 'even the lowest rate tried missed the SLO'}"]
    return "\n".join(lines)
