"""Where the time goes: ONNX Runtime's profiler, summarised per operator type and per node.

``profile(model, config)`` measures the model twice, each with its own session:

1. unprofiled, as ``inferspeed run`` would (the reference time);
2. with ONNX Runtime's profiling on (``EnableProfiling``): the same warm-up and loop, capped so
   the trace stays under ORT's event limit (PROFILE_EVENT_BUDGET), then ``SessionEndProfiling``.

The trace (Chrome trace-event JSON) has a ``model_run`` event per call and a
``<node>_kernel_time`` event per node executed, with ORT's op type (``args.op_name``) and
execution provider. Only the calls of the timed loop count: the first (cold) run and the
warm-up are left out by taking the last ``count`` ``model_run`` events, and node events count
when they start within one of those. Node and op-type names are ORT's after graph optimisation
(fused nodes as ORT names them, e.g. ``FusedGemm``). ORT writes times in whole microseconds.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import Config
from .errors import InputError, OrtError
from .result import Result

__all__ = ["PROFILE_EVENT_BUDGET", "ProfileResult", "profile", "summarize_trace"]

#: Trace events a profiled run may produce (ORT stops recording at 1,000,000).
PROFILE_EVENT_BUDGET = 500_000
#: Fewest profiled calls, whatever the budget says.
PROFILE_MIN_CALLS = 10


@dataclass(frozen=True)
class ProfileResult:
    """The unprofiled and profiled measurements; ``profiled.profile`` holds the tables."""

    unprofiled: Result
    profiled: Result

    @property
    def summary(self) -> Mapping[str, Any]:
        assert self.profiled.profile is not None
        return self.profiled.profile


def _node_count(path: str) -> int:
    """Nodes of the model's graphs, subgraphs included (an upper bound for ORT's per-call
    events before fusion; a Loop body counts once)."""
    try:
        import onnx

        model = onnx.load(path, load_external_data=False)
    except Exception:
        return 100

    def count(graph: Any) -> int:
        n = 0
        for node in graph.node:
            n += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    n += count(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    n += sum(count(g) for g in attr.graphs)
        return n

    return max(1, count(model.graph))


def _table(rows: dict[str, dict[str, Any]], model_time_us: float, runs: int) -> list[dict[str, Any]]:
    out = []
    for key, r in rows.items():
        total = r["total_us"]
        out.append(
            {
                **({"node": key} if "op_type" in r else {"op_type": key}),
                **r,
                "calls_per_run": r["calls"] / runs if runs else None,
                "mean_us": total / r["calls"] if r["calls"] else None,
                "share": total / model_time_us if model_time_us > 0 else None,
            }
        )
    out.sort(key=lambda row: -row["total_us"])
    return out


def summarize_trace(events: Sequence[Mapping[str, Any]], timed_calls: int) -> dict[str, Any]:
    """Per-op-type and per-node tables from ORT's trace events, over the last ``timed_calls``
    ``model_run`` events (fewer when ORT stopped recording)."""
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: float(e["ts"]),
    )
    kept = runs[-timed_calls:] if timed_calls > 0 else []
    starts = [float(e["ts"]) for e in kept]
    ends = [float(e["ts"]) + float(e["dur"]) for e in kept]
    model_time = float(sum(float(e["dur"]) for e in kept))
    by_type: dict[str, dict[str, Any]] = {}
    by_node: dict[str, dict[str, Any]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        ts = float(e["ts"])
        k = bisect.bisect_right(starts, ts) - 1
        if k < 0 or ts > ends[k]:
            continue  # cold run, warm-up, or between runs
        args = e.get("args", {})
        op = str(args.get("op_name", "?"))
        dur = float(e["dur"])
        t = by_type.setdefault(op, {"calls": 0, "total_us": 0.0, "nodes": set()})
        # An unnamed node is named by its index in ORT's graph.
        node = name[: -len("_kernel_time")] or f"#{args.get('node_index', '?')} ({op})"
        t["calls"] += 1
        t["total_us"] += dur
        t["nodes"].add(node)
        n = by_node.setdefault(
            node, {"op_type": op, "provider": str(args.get("provider", "?")), "calls": 0, "total_us": 0.0}
        )
        n["calls"] += 1
        n["total_us"] += dur
    for t in by_type.values():
        t["nodes"] = len(t["nodes"])
    node_time = sum(n["total_us"] for n in by_node.values())
    durations = np.array([float(e["dur"]) for e in kept]) if kept else np.zeros(0)
    return {
        "runs": len(kept),
        "runs_expected": timed_calls,
        "model_time_us": model_time,
        "model_run_median_us": float(np.median(durations)) if durations.size else None,
        "node_time_us": node_time,
        "node_share": node_time / model_time if model_time > 0 else None,
        # Inside model_run but in no node: ORT's executor and its profiler between kernels.
        "between_nodes_us": max(0.0, model_time - node_time),
        "by_op_type": _table(by_type, model_time, len(kept)),
        "by_node": _table(by_node, model_time, len(kept)),
    }


def profile(
    model: Any,
    config: Config | None = None,
    *,
    trace: str | os.PathLike[str] | None = None,
    **options: Any,
) -> ProfileResult:
    """Measure ``model`` unprofiled, then with ONNX Runtime's profiler, and summarise the trace
    (see the module's docstring). ``trace``: keep ORT's trace file at this path."""
    from .session import Session

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
                written = profiled_session.end_profiling()
            if not written or not os.path.exists(written):
                raise OrtError("ONNX Runtime wrote no profile")
            try:
                with open(written, encoding="utf-8") as f:
                    events = json.load(f)
            except (OSError, ValueError) as exc:
                raise OrtError(f"cannot read ONNX Runtime's profile {written}: {exc}") from None
            summary = summarize_trace(events, int(profiled.stats.count))
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
    return ProfileResult(unprofiled, profiled)
