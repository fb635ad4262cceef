"""Plain-text summaries for the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..result import Result


def format_duration(ns: float | None) -> str:
    """A duration with a unit chosen by magnitude: 812 ns, 12.34 µs, 3.456 ms, 1.234 s."""
    if ns is None:
        return "-"
    a = abs(ns)
    if a < 1e3:
        return f"{ns:.0f} ns"
    if a < 1e6:
        return f"{ns / 1e3:.3g} µs" if a >= 1e5 else f"{ns / 1e3:.2f} µs"
    if a < 1e9:
        return f"{ns / 1e6:.2f} ms" if a < 1e8 else f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.3f} s"


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


def render_result(result: Result) -> str:
    s = result.stats
    cfg = result.config
    loop = result.loop
    ort = result.environment.get("onnxruntime", {})
    threads = cfg.get("threads") or "default"
    providers = ", ".join(p["name"] for p in cfg.get("providers", [])) or "CPUExecutionProvider"
    inputs = ", ".join(
        f"{i['name']} {'x'.join(map(str, i['bound_shape'])) or 'scalar'}"
        for i in result.model.get("inputs", [])
    )
    partial = "   [PARTIAL: interrupted]" if result.interrupted else ""
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
    columns = ("min", "median", "mean", "p90", "p95", "p99", "p99.9", "max")
    values = (s.min_ns, s.median_ns, s.mean_ns, s.p90_ns, s.p95_ns, s.p99_ns, s.p999_ns, s.max_ns)
    create = format_duration(result.session.get("create_ns"))
    first = format_duration(result.session.get("first_run_ns"))
    outliers = s.outliers_low + s.outliers_high
    lines = [
        f"model      {result.model.get('name')}  ({inputs})",
        f"runtime    onnxruntime {ort.get('version', '?')}  providers: {providers}",
        f"loop       single stream, mode={cfg.get('mode')}, threads={threads}, "
        f"opt={cfg.get('graph_optimization')}, cache={cache}" + "".join(f", {e}" for e in extras),
        f"samples    {s.count} timed after {result.warmup.get('iterations', 0)} warm-up{partial}",
        "",
        "  " + " ".join(f"{c:>10}" for c in columns),
        "  " + " ".join(f"{format_duration(v):>10}" for v in values),
        "",
        "95% CI     "
        + "   ".join(
            f"{label} {_interval(*s.ci(key))}"
            for key, label in (("median_ns", "median"), ("p99_ns", "p99"), ("p999_ns", "p99.9"))
        ),
        f"spread     std {format_duration(s.std_ns)}, CV {s.cv:.1%}, IQR {format_duration(s.iqr_ns)}, "
        f"{outliers} outliers ({s.outliers_low} low, {s.outliers_high} high; "
        + (f"{s.outliers_dropped} dropped)" if s.outliers_dropped else "kept)"),
        f"throughput {_rate(s.throughput_per_s)} (one stream)",
        f"session    created in {create}, first run {first}",
        f"timer      {format_duration(s.timer_overhead_ns)} per clock-read pair (included, not subtracted)",
    ]
    if result.stopping is not None:
        st = result.stopping
        widths = ", ".join(f"{k} ±{v:.2%}" for k, v in st["relative_halfwidths"].items() if v is not None)
        verdict = "met" if st["met"] else "NOT met"
        lines.append(
            f"stopping   target ±{st['target_ci']:.2%}: {verdict} after {st['samples']} samples"
            + (f" ({widths})" if widths else "")
        )
    if result.processes is not None:
        p = result.processes
        medians = ", ".join(format_duration(m) for m in p["medians_ns"])
        lines.append(f"processes  {p['count']} pooled; medians {medians} (spread {p['median_spread']:.1%})")
    lines += [f"WARNING: {w.message}" for w in result.warnings]
    return "\n".join(lines)


def render_info(info: Mapping[str, Any]) -> str:
    def shape(dims: Any) -> str:
        if dims is None:
            return "(no shape)"
        return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"

    lines = [
        f"model        {info['path']}",
        f"size         {info['size_bytes']:,} bytes   ir_version {info['ir_version']}   "
        f"opsets {', '.join(f'{k} {v}' for k, v in info['opsets'].items())}",
        f"producer     {info.get('producer') or '-'}",
        f"parameters   {info['parameters']:,} in {info['initializers']} initializers"
        + (f" ({info['external_initializers']} external)" if info["external_initializers"] else ""),
        "inputs",
        *(f"  {v['name']:<24} {v['type']:<10} {shape(v['shape'])}" for v in info["inputs"]),
        "outputs",
        *(f"  {v['name']:<24} {v['type']:<10} {shape(v['shape'])}" for v in info["outputs"]),
        f"operators    {info['nodes']} nodes",
        *(f"  {op:<24} {n}" for op, n in info["operators"].items()),
    ]
    return "\n".join(lines)
