"""Plain text of instruction counts (the "instructions" metric): one count, comparisons, and
a gate's; ``report.text`` finds these by the metric's name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..analysis.instructions import InstructionComparison
from ..metrics import metric_named
from ..results.result import Result
from ..units import format_bytes

if TYPE_CHECKING:
    from ..results.sweepfile import SweepLine
    from ..tools.gate import GateVerdict

__all__ = [
    "instruction_decision",
    "render_instruction_comparisons",
    "render_instruction_gate",
    "render_instruction_sweep_row",
    "render_instructions",
]


def _n(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def _threads_text(t: Mapping[str, Any]) -> str:
    """The counted session's threads as recorded (older results: one intra-op thread, no spinning)."""
    n = t.get("intra_op", 1)
    words = [f"{n} intra-op thread{'s' if n != 1 else ''}"]
    if t.get("execution_mode") == "parallel" or (t.get("inter_op") or 1) > 1:
        words.append(f"{t.get('execution_mode', '?')} execution, {t.get('inter_op') or 'default'} inter-op")
    words.append("spinning" if t.get("spinning") else "no spinning")
    return ", ".join(words)


def _head(result: Result) -> list[str]:
    m = result.model
    inputs = ", ".join(f"{i.get('name')} {i.get('bound_shape')}" for i in m.get("inputs", []))
    ort = result.environment.get("onnxruntime", {})
    ins = result.instructions or {}
    vg = ins.get("valgrind", {})
    how = "client requests" if vg.get("client_requests") else "--toggle-collect on inferspeed_counted_call"
    return [
        f"model        {m.get('name', '?')} ({format_bytes(m.get('size_bytes') or 0)}), inputs {inputs}",
        f"runtime      ONNX Runtime {ort.get('version', '?')}, {result.loop.get('mode', '?')} calls, "
        + _threads_text(ins.get("threads") or {}),
        f"counted      under Valgrind {vg.get('version') or '?'} (Callgrind, {how}): "
        f"{ins.get('calls')} calls after {ins.get('warmup_calls')} uncounted",
    ]


def _cache_line(median: Mapping[str, float], ins: Mapping[str, Any]) -> list[str]:
    if "I1mr" not in median:
        return []
    cache = ins.get("valgrind", {}).get("cache", {})
    sizes = ", ".join(f"{name} {format_bytes(c['bytes'])}" for name, c in cache.items())
    return [
        f"cache misses L1: {_n(median['I1mr'])} instruction, {_n(median['D1mr'])} data read, "
        f"{_n(median['D1mw'])} data write; last level: {_n(median['ILmr'])}, {_n(median['DLmr'])}, "
        f"{_n(median['DLmw'])} (simulated: {sizes})",
        f"cycles (est) {_n(ins.get('estimated_cycles'))} per call ({ins.get('cycle_formula')})",
    ]


def _time_line(times: Mapping[str, float]) -> str:
    if not times:
        return ""
    parts = (
        ("valgrind_start", "Valgrind and Python start"),
        ("imports", "imports"),
        ("session", "session"),
        ("counted_calls", "counted calls"),
        ("after", "rest"),
    )
    split = ", ".join(f"{label} {times[key]:.1f} s" for key, label in parts if key in times)
    return f"time         {times.get('total', 0.0):.1f} s: {split}"


def render_instructions(result: Result) -> str:
    """One instruction count: instructions per call with their spread, data accesses,
    simulated cache misses and the cycle estimate, instructions per MAC, what Valgrind's CPU
    means for the kernels, where the time went."""
    ins = result.instructions or {}
    median = ins.get("median", {})
    lines = [
        *_head(result),
        "",
        f"instructions {_n(ins.get('instructions'))} per call (median; min {_n(ins.get('min'))}, "
        f"max {_n(ins.get('max'))}: spread {ins.get('spread', 0.0):.2%})",
    ]
    if "Dr" in median:
        lines.append(f"data         {_n(median['Dr'])} reads, {_n(median['Dw'])} writes per call")
    lines += _cache_line(median, ins)
    macs = (result.compute or {}).get("macs")
    if macs:
        lines.append(f"per MAC      {ins['instructions'] / macs:.3f} instructions ({macs:,} MACs per call)")
    lines.append(f"CPU          {ins.get('cpu', {}).get('note', '')}")
    lines.append(_time_line(ins.get("time_s", {})))
    lines += [f"note: {n}" for n in result.notices[:-1]]
    return "\n".join(line for line in lines if line)


def render_instruction_comparisons(comparisons: Sequence[InstructionComparison]) -> str:
    """One row per candidate: its instructions per call, the ratio to the baseline's, the
    verdict; then what differs between the runs besides the model."""
    lines = [f"{'':<28} {'instructions/call':>18} {'ratio':>8}  verdict"]
    if comparisons:
        c0 = comparisons[0]
        lines.append(f"{c0.baseline[-28:]:<28} {_n(c0.baseline_instructions):>18} {'1':>8}  (baseline)")
    for c in comparisons:
        gate = ""
        if c.fail_if_more is not None:
            gate = (
                f"; FAIL: more than {c.fail_if_more:.1%}" if c.failed else f"; within +{c.fail_if_more:.1%}"
            )
        lines.append(
            f"{c.candidate[-28:]:<28} {_n(c.candidate_instructions):>18} {c.ratio:>8.4f}  "
            f"{c.verdict} (vs {c.baseline}; spread across calls {c.spread:.2%}{gate})"
        )
        lines += [f"  {c.candidate[-28:]}: {note}" for note in c.notes]
    return "\n".join(lines)


def render_instruction_gate(verdict: GateVerdict) -> str:
    """A gate of instruction counts: each side's count, then the comparison."""
    c = verdict.comparison
    sides = ((c.baseline, verdict.baseline), (c.candidate, verdict.candidate))
    lines = [f"== {label}\n{render_instructions(result)}\n" for label, result in sides]
    if isinstance(c, InstructionComparison):
        lines.append(render_instruction_comparisons([c]))
    return "\n".join(lines)


def instruction_decision(c: InstructionComparison, limit: float) -> tuple[bool, str]:
    """Whether the candidate needs more than ``limit`` more instructions per call, and the
    gate's line saying so."""
    figures = (
        f"{c.candidate_instructions:,.0f} against {c.baseline_instructions:,.0f} instructions per call, "
        f"ratio {c.ratio:.4f}"
    )
    if c.worse_by_more_than(limit):
        return True, f"gate: FAIL: {c.candidate}: {figures}, more than the {limit:.1%} allowed"
    return False, f"gate: pass: {figures}; fails above {1 + limit:.4f}"


def render_instruction_sweep_row(line: SweepLine) -> str:
    """A sweep cell's count: instructions per call and per sample of its batch."""
    per_call = line.value(metric_named(line.metric).headline) or 0.0
    return f"{per_call:>14,.0f} instructions, {per_call / line.batch:,.0f} per sample"
