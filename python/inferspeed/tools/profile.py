"""Where the time goes: ONNX Runtime's profiler, summarised per operator type and per node.

``profile(model, config)`` measures the model twice, each with its own session:

1. unprofiled, as ``inferspeed run`` would (the reference time: the model's latency, which
   ``inferspeed profile`` leads with);
2. with ONNX Runtime's profiling on (``EnableProfiling``): the same warm-up and loop, capped so
   the trace stays under ORT's event limit (PROFILE_EVENT_BUDGET), then ``SessionEndProfiling``.

The trace (Chrome trace-event JSON) has a ``model_run`` event per call, an executor event per
executor call (subgraphs included) and a ``<node>_kernel_time`` event per node executed, with
ORT's op type (``args.op_name``) and execution provider. Only the calls of the timed loop
count: the first (cold) run and the warm-up are left out (``summarize_trace``: the last
``count`` ``model_run`` events, or those after the untimed calls when ORT's event limit cut the
trace), and node events count when they start within one of those. Node and op-type names are
ORT's after graph optimisation (fused nodes as ORT names them, e.g. ``FusedGemm``). ORT writes
times in whole microseconds.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import Config
from ..errors import InputError, OrtError
from ..facts.modelfile import load_proto
from ..results.result import Result

__all__ = ["PROFILE_EVENT_BUDGET", "ProfileResult", "profile", "summarize_trace"]

#: Trace events a profiled run may produce (ORT stops recording at 1,000,000).
PROFILE_EVENT_BUDGET = 500_000
#: Fewest profiled calls, whatever the budget says.
PROFILE_MIN_CALLS = 10


@dataclass(frozen=True)
class ProfileResult:
    """The unprofiled and profiled measurements. Both carry the summary and its tables in
    ``.profile``; ``unprofiled`` is the model's latency (what ``inferspeed profile --json``
    writes), ``profiled`` the calls slowed by ONNX Runtime's profiler that the tables are of."""

    unprofiled: Result
    profiled: Result

    @property
    def summary(self) -> Mapping[str, Any]:
        assert self.profiled.profile is not None
        return self.profiled.profile


def _node_count(path: str) -> int:
    """Nodes of the model's graphs, subgraphs included (an upper bound for ORT's per-call
    events before fusion; a Loop body counts once); 100 when the model is not parsed here."""
    model = load_proto(path)
    if model is None:
        return 100
    return max(1, sum(len(graph.nodes) for graph in model.graphs()))


@dataclass(slots=True)
class _Span:
    """One trace event inside a timed ``model_run``: a node's kernel event or an executor call."""

    kind: str  # "node" or "exec"
    ts: float
    dur: float
    order: int  # position in the trace: ORT writes an event when it ends, a parent after its children
    tid: Any
    name: str = ""
    op: str = "?"
    provider: str = "?"
    children: list[_Span] = field(default_factory=list)
    dispatch: float = 0.0  # executor time around the kernel, attributed to this node
    own: float = 0.0  # the node's event less what its subgraphs' nodes took
    body: float = 0.0  # time of the nodes of its subgraphs (all levels)

    @property
    def end(self) -> float:
        return self.ts + self.dur

    def contains(self, other: _Span) -> bool:
        """Whether ``other`` ran inside this span. Executor calls hold nodes and a control-flow
        node holds its subgraphs' executor calls, never a node another node: two nodes that
        look nested are siblings within one microsecond (a kernel under 1 µs has dur 0).
        ORT truncates ts and dur to whole microseconds, so a child may end 1 µs past its
        parent; a sibling starts at or after the truncated end."""
        return (
            self.kind != other.kind
            and self.tid == other.tid
            and self.ts <= other.ts < self.end
            and other.end <= self.end + 1.0
        )


def _forest(spans: list[_Span]) -> list[_Span]:
    """Nest the spans of one call by containment on the same thread: an executor call inside a
    control-flow node (Loop, If, Scan runs its subgraph), nodes inside an executor call."""
    roots: list[_Span] = []
    stack: list[_Span] = []
    for s in sorted(spans, key=lambda s: (s.ts, -s.dur, -s.order)):
        while stack and not stack[-1].contains(s):
            stack.pop()
        (stack[-1].children if stack else roots).append(s)
        stack.append(s)
    return roots


def _attribute_frame(nodes: list[_Span], lo: float | None, hi: float | None) -> None:
    """Give the executor's time around a sequence of sibling nodes to the nodes: each gap
    between two nodes half to each, the time from the frame's start (``lo``, an executor call's
    start) to the first node to it, and from the last node to the frame's end to the last node.
    Overlapping siblings (the parallel executor) share no gap."""
    if not nodes:
        return
    nodes = sorted(nodes, key=lambda s: s.ts)
    if lo is not None:
        nodes[0].dispatch += max(0.0, nodes[0].ts - lo)
    reach, last = nodes[0].end, nodes[0]
    for n in nodes[1:]:
        gap = n.ts - reach
        if gap > 0:
            last.dispatch += gap / 2
            n.dispatch += gap / 2
        if n.end >= reach:
            reach, last = n.end, n
    if hi is not None:
        last.dispatch += max(0.0, hi - reach)


def _settle(container: list[_Span]) -> float:
    """Attribute the executor time of the frames under one container (a call's top level or a
    control-flow node), fill each node's ``own`` and ``body``, and return the time the
    container's nodes take in total (their own time and dispatch, subgraphs included)."""
    total = 0.0
    loose = [c for c in container if c.kind == "node"]
    _attribute_frame(loose, None, None)
    frames = [
        (c.ts, c.end, [n for n in c.children if n.kind == "node"]) for c in container if c.kind == "exec"
    ]
    for lo, hi, nodes in frames:
        _attribute_frame(nodes, lo, hi)
    for nodes in [loose] + [f[2] for f in frames]:
        for n in nodes:
            inner = _settle(n.children)
            n.body = inner
            n.own = max(0.0, n.dur - inner)
            total += n.own + n.dispatch + inner
    return total


def _walk(spans: list[_Span], path: str = "") -> Any:
    """Every node below ``spans`` with its path ("loop > body_add" for a Loop body's node; ORT's
    own names often contain "/")."""
    for s in spans:
        if s.kind == "node":
            key = f"{path} > {s.name}" if path else s.name
            yield key, s
            yield from _walk(s.children, key)
        else:
            yield from _walk(s.children, path)


def _table(rows: dict[str, dict[str, Any]], model_time_us: float, runs: int) -> list[dict[str, Any]]:
    out = []
    for key, r in rows.items():
        total = r["total_us"]
        calls = r["calls"]
        row = {
            **({"node": key} if "op_type" in r else {"op_type": key}),
            **r,
            "calls_per_run": calls / runs if runs else None,
            "mean_us": total / calls if calls else None,
            "kernel_mean_us": r["kernel_us"] / calls if calls else None,
            "share": total / model_time_us if model_time_us > 0 else None,
        }
        if "body_us" in r:
            if r["body_us"] > 0:
                row["inclusive_share"] = (total + r["body_us"]) / model_time_us if model_time_us > 0 else None
            else:
                del row["body_us"]
        out.append(row)
    out.sort(key=lambda row: -row["total_us"])
    return out


def summarize_trace(
    events: Sequence[Mapping[str, Any]], timed_calls: int, untimed_calls: int | None = None
) -> dict[str, Any]:
    """Per-op-type and per-node tables from ORT's trace events, over the ``timed_calls`` timed
    ``model_run`` events: the last ones, or, when ORT stopped recording at its event limit
    (fewer than ``untimed_calls + timed_calls`` recorded), those after the first
    ``untimed_calls`` (the cold run and the warm-up), which ORT did record.

    A node's time is its kernel event plus its dispatch: the executor's work between kernels
    (ORT's bookkeeping and, while profiling, its profiler's), each gap split between the two
    nodes around it, and the executor call's start and end given to its first and last node.
    So the nodes' times add up to the executor's time, and what is left of ``model_run`` is
    ORT's run outside the nodes (``outside_nodes_us``: checking inputs, fetching outputs).
    A control-flow node's own time excludes the nodes of its subgraphs, which have rows of
    their own (named ``parent > node``); ``body_us`` and ``inclusive_share`` give it with them."""
    kept = _timed_runs(events, timed_calls, untimed_calls)
    by_type, by_node, node_time = _tables(_spans_by_run(events, kept))
    model_time = float(sum(float(e["dur"]) for e in kept))
    kernel_time = sum(t["kernel_us"] for t in by_type.values())
    durations = np.array([float(e["dur"]) for e in kept]) if kept else np.zeros(0)
    return {
        "runs": len(kept),
        "runs_expected": timed_calls,
        "model_time_us": model_time,
        "model_run_median_us": float(np.median(durations)) if durations.size else None,
        "node_time_us": node_time,
        "node_share": node_time / model_time if model_time > 0 else None,
        "kernel_time_us": kernel_time,
        "kernel_share": kernel_time / model_time if model_time > 0 else None,
        "dispatch_time_us": node_time - kernel_time,
        # Inside model_run but outside the executor's nodes: ORT's run before and after them.
        "outside_nodes_us": max(0.0, model_time - node_time),
        "by_op_type": _table(by_type, model_time, len(kept)),
        "by_node": _table(by_node, model_time, len(kept)),
    }


def _timed_runs(
    events: Sequence[Mapping[str, Any]], timed_calls: int, untimed_calls: int | None
) -> list[Mapping[str, Any]]:
    """The ``model_run`` events of the timed calls, in time order (see summarize_trace)."""
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: float(e["ts"]),
    )
    if timed_calls <= 0:
        return []
    if untimed_calls is not None and len(runs) < untimed_calls + timed_calls:
        return runs[untimed_calls:]  # ORT kept the first events only
    return runs[-timed_calls:]


def _spans_by_run(
    events: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]
) -> list[list[_Span]]:
    """The node-kernel and executor events that start within each kept ``model_run``, as spans."""
    starts = [float(e["ts"]) for e in kept]
    ends = [float(e["ts"]) + float(e["dur"]) for e in kept]
    per_run: list[list[_Span]] = [[] for _ in kept]
    for order, e in enumerate(events):
        name = str(e.get("name", ""))
        cat = e.get("cat")
        if cat == "Node" and name.endswith("_kernel_time"):
            kind = "node"
        elif cat == "Session" and name.endswith("Executor::Execute"):
            kind = "exec"
        else:
            continue
        ts = float(e["ts"])
        k = bisect.bisect_right(starts, ts) - 1
        if k < 0 or ts > ends[k]:
            continue  # cold run, warm-up, or between runs
        span = _Span(kind, ts, float(e.get("dur", 0.0)), order, e.get("tid"))
        if kind == "node":
            args = e.get("args", {})
            span.op = str(args.get("op_name", "?"))
            span.provider = str(args.get("provider", "?"))
            # An unnamed node is named by its index in ORT's graph.
            span.name = name[: -len("_kernel_time")] or f"#{args.get('node_index', '?')} ({span.op})"
        per_run[k].append(span)
    return per_run


def _tables(
    per_run: Sequence[list[_Span]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], float]:
    """Times summed per op type and per node over the runs, and the nodes' total time (each
    run's spans nested and their dispatch settled first)."""
    by_type: dict[str, dict[str, Any]] = {}
    by_node: dict[str, dict[str, Any]] = {}
    node_time = 0.0
    for spans in per_run:
        roots = _forest(spans)
        node_time += _settle(roots)
        for key, s in _walk(roots):
            t = by_type.setdefault(
                s.op, {"calls": 0, "total_us": 0.0, "kernel_us": 0.0, "dispatch_us": 0.0, "nodes": set()}
            )
            n = by_node.setdefault(
                key,
                {"op_type": s.op, "provider": s.provider, "calls": 0, "total_us": 0.0, "kernel_us": 0.0,
                 "dispatch_us": 0.0, "body_us": 0.0},
            )  # fmt: skip
            for row in (t, n):
                row["calls"] += 1
                row["total_us"] += s.own + s.dispatch
                row["kernel_us"] += s.own
                row["dispatch_us"] += s.dispatch
            t["nodes"].add(key)
            n["body_us"] += s.body
    for t in by_type.values():
        t["nodes"] = len(t["nodes"])
    return by_type, by_node, node_time


def profile(
    model: Any,
    config: Config | None = None,
    *,
    trace: str | os.PathLike[str] | None = None,
    **options: Any,
) -> ProfileResult:
    """Measure ``model`` unprofiled, then with ONNX Runtime's profiler, and summarise the trace
    (see the module's docstring). ``trace``: keep ORT's trace file at this path."""
    from ..measure.session import Session

    cfg = Config.from_options(config, **options)
    if cfg.processes > 1 or cfg.scenario != "single-stream" or cfg.concurrency > 1:
        raise InputError("profile measures one process, single stream, one worker")
    with Session(model, cfg) as session:
        unprofiled = session.measure()
        path = session.model_path
        nodes = _node_count(path)
        # Every call writes a model_run, an executor event and about two events per node.
        cap = max(PROFILE_MIN_CALLS, PROFILE_EVENT_BUDGET // (2 * nodes + 2))
        iterations, seconds = cfg.loop_limits
        limits = {"iterations": min(iterations, cap) if iterations else cap, "max_time": seconds}
        folder = tempfile.mkdtemp(prefix="inferspeed-profile-")
        try:
            with Session(path, cfg, profile_prefix=os.path.join(folder, "ort")) as profiled_session:
                profiled = profiled_session.measure(**limits)
                untimed_before = profiled_session.untimed_calls
                written = profiled_session.end_profiling()
            if not written or not os.path.exists(written):
                raise OrtError("ONNX Runtime wrote no profile")
            try:
                with open(written, encoding="utf-8") as f:
                    events = json.load(f)
            except (OSError, ValueError) as exc:
                raise OrtError(f"cannot read ONNX Runtime's profile {written}: {exc}") from None
            # The calls before the timed loop: prepare()'s (single stream makes no others outside
            # the loops) and the warm-up's.
            untimed = untimed_before + int(profiled.warmup["iterations"])
            summary = summarize_trace(events, int(profiled.stats.count), untimed)
            kept = None
            if trace is not None:
                kept = os.path.abspath(os.fspath(trace))
                shutil.copyfile(written, kept)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    u, p = unprofiled.stats, profiled.stats
    summary = {
        "graph_optimization": cfg.graph_optimization,
        "unprofiled_median_ns": u.median_ns,
        "unprofiled_ci95_median_ns": list(u.ci95_median_ns),
        "profiled_median_ns": p.median_ns,
        "profiling_overhead": p.median_ns / u.median_ns - 1.0 if u.median_ns > 0 else None,
        "calls_cap": cap,
        "trace": kept,
        **summary,
    }
    import dataclasses

    # Memory figures of a second session in one process mean little: the first one's stand.
    profiled = dataclasses.replace(profiled, profile=summary, memory=unprofiled.memory)
    return ProfileResult(dataclasses.replace(unprofiled, profile=summary), profiled)
