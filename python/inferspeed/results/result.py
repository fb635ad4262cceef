"""Results: samples, statistics, configuration and environment; the versioned JSON schema."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import DEFAULT_METRIC, metric_named
from ..stats.diagnostics import Diagnostic
from ..stats.summary import Stats

__all__ = [
    "SCHEMA",
    "Result",
    "batch_from",
    "batch_of",
    "compute_at",
    "first_dim",
    "load_json",
    "read_json_file",
    "results_document",
    "results_from_document",
    "write_json",
]

#: JSON schema identifier. History:
#: inferspeed/1 (0.1.0): first version; see docs/schema.md. Later additions within version 1:
#: stats CIs/spread/outliers, "loop", "stopping", "warnings" (0.2.0).
SCHEMA = "inferspeed/1"


@dataclass(frozen=True, eq=False)
class Result:
    """One measurement.

    Attributes
    ----------
    samples_ns : numpy.ndarray
        int64 latency of every timed iteration, in order, in nanoseconds.
    stats : Stats
        Summary of ``samples_ns``.
    model : dict
        Path, file size and signature of the model.
    config : dict
        The configuration used (``Config.to_dict()``).
    environment : dict
        Machine and software (``capture_environment()``).
    scenario : str
        "single-stream": a closed loop, one call after another.
    session : dict
        Session creation time, first-run latency, whether outputs were preallocated.
    warmup : dict
        Untimed warm-up iterations and their duration.
    loop : dict
        How the loop ran: cache mode and flush buffer size, input sets, pinned CPU, the CPU
        cores other processes used meanwhile.
    stopping : dict or None
        Adaptive stopping (``target_ci``): the target, whether it was met, samples it took.
    warnings : tuple of Diagnostic
        Stability diagnostics in plain words (see :mod:`inferspeed.stats.diagnostics`).
    interrupted : bool
        The loop was stopped (Ctrl-C) before its limit: a partial result.
    notices : tuple of str
        What inferspeed chose on the user's behalf (e.g. dynamic dims set to 1).
    processes : dict or None
        With ``processes`` > 1: each worker process's median and the spread between them.
    scenario_stats : dict
        Figures of the load scenario, written at the top level of the result's JSON: for a
        server ``offered_qps``, ``achieved_qps``, ``queue_stats``, ``service_stats``,
        ``scheduler_lateness_stats``; for offline ``throughput_per_s``, ``samples_per_s``,
        ``per_worker``; with a deadline ``deadline_miss_rate`` and ``longest_miss_run``.
    memory : dict or None
        Resident memory: before the session, peak during its creation and first run, peak
        during the measurement; model file and initializer sizes (``Session.memory_info``).
    compute : dict or None
        Multiply-accumulates per call at the bound shapes and the achieved GFLOP/s.
    profile : dict or None
        ``inferspeed profile``: per-operator-type and per-node times from ONNX Runtime's
        profiler (:mod:`inferspeed.tools.profile`).
    monitor : dict or None
        The machine-speed monitor of a closed loop (:mod:`inferspeed.measure.monitor`):
        readings of a fixed probe workload between slices of the timed phase, each slice's
        median, how much the machine's speed moved (``speed_moved``) and its states.
    instructions : dict or None
        ``metric="instructions"`` (:mod:`inferspeed.measure.instructions`): the instructions of
        each counted call under Valgrind's Callgrind (``per_call``), their median
        (``instructions``) and spread, simulated cache misses, an estimated cycle count, how
        Valgrind ran. ``samples_ns`` then holds each counted call's time under Valgrind, which
        is not a latency.
    generation : dict or None
        ``metric="generation"`` (:mod:`inferspeed.measure.generation`): a decoder's
        generations (prompt and output lengths, batch), time to first token, the time per output
        token and its spread, tokens per second, the per-position latency curve and positions
        far off it, sampling time, KV-cache bytes, every generation's per-step samples and the
        first generation's token ids. ``samples_ns`` then holds the decode steps' latencies
        (one per output token after the first), in order.
    """

    samples_ns: np.ndarray
    stats: Stats
    model: Mapping[str, Any]
    config: Mapping[str, Any]
    environment: Mapping[str, Any]
    scenario: str = "single-stream"
    session: Mapping[str, Any] = field(default_factory=dict)
    warmup: Mapping[str, Any] = field(default_factory=dict)
    loop: Mapping[str, Any] = field(default_factory=dict)
    stopping: Mapping[str, Any] | None = None
    warnings: tuple[Diagnostic, ...] = ()
    interrupted: bool = False
    notices: tuple[str, ...] = ()
    processes: Mapping[str, Any] | None = None
    scenario_stats: Mapping[str, Any] = field(default_factory=dict)
    memory: Mapping[str, Any] | None = None
    compute: Mapping[str, Any] | None = None
    profile: Mapping[str, Any] | None = None
    monitor: Mapping[str, Any] | None = None
    instructions: Mapping[str, Any] | None = None
    generation: Mapping[str, Any] | None = None

    @property
    def metric(self) -> str:
        """What the result holds: the name of its row in :data:`inferspeed.metrics.METRICS`
        ("latency", "instructions"), from its configuration (a callable's result, which has
        no metric in its configuration, holds latencies)."""
        return str(self.config.get("metric") or DEFAULT_METRIC)

    def headline(self) -> float | None:
        """The metric's headline value (``Metric.headline``: the median latency in ns, the
        instructions per call, ...); None when the result lacks it."""
        found: Any = self
        for key in metric_named(self.metric).headline:
            found = found.get(key) if isinstance(found, Mapping) else getattr(found, key, None)
            if found is None:
                return None
        return float(found)

    @property
    def cold_start(self) -> dict[str, Any]:
        """Session creation time, the first (cold) run, the first warm-up iteration and the
        iterations until steady state (null where not measured; ``settle_timed_iterations`` of
        them were timed ones, when the warm-up was too short)."""
        return {
            "session_create_ns": self.session.get("create_ns"),
            "first_run_ns": self.session.get("first_run_ns"),
            "first_warmup_iteration_ns": self.warmup.get("first_iteration_ns"),
            "settle_iterations": self.warmup.get("settle_iterations"),
            "settle_timed_iterations": self.warmup.get("settle_timed_iterations", 0),
        }

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples_ns)
        if samples.ndim != 1 or samples.size == 0 or samples.dtype.kind not in "iu":
            raise ValueError("samples_ns must be a non-empty 1-D integer array")
        samples = samples.astype(np.int64, copy=False)
        samples.flags.writeable = False
        object.__setattr__(self, "samples_ns", samples)

    def to_dict(self) -> dict[str, object]:
        """The result's entry in ``results`` of the JSON document."""
        return {
            "model": dict(self.model),
            "config": dict(self.config),
            "scenario": self.scenario,
            "interrupted": self.interrupted,
            "session": dict(self.session),
            "warmup": dict(self.warmup),
            "loop": dict(self.loop),
            "stopping": None if self.stopping is None else dict(self.stopping),
            "warnings": [w.to_dict() for w in self.warnings],
            "notices": list(self.notices),
            "processes": None if self.processes is None else dict(self.processes),
            "cold_start": self.cold_start,
            "memory": None if self.memory is None else dict(self.memory),
            "compute": None if self.compute is None else dict(self.compute),
            "profile": None if self.profile is None else dict(self.profile),
            "monitor": None if self.monitor is None else dict(self.monitor),
            "instructions": None if self.instructions is None else dict(self.instructions),
            "generation": None if self.generation is None else dict(self.generation),
            **dict(self.scenario_stats),
            "stats": self.stats.to_dict(),
            "samples_ns": self.samples_ns.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object], environment: Mapping[str, object]) -> Result:
        """A result from its JSON form (an entry of ``results``) and the document's environment;
        KeyError, TypeError or ValueError when it is malformed."""
        entry: Any = data  # JSON: checked by the conversions below
        known = {
            "model", "config", "scenario", "interrupted", "session", "warmup", "loop", "stopping",
            "warnings", "notices", "processes", "stats", "samples_ns", "cold_start", "memory", "compute",
            "profile", "monitor", "environment", "instructions", "generation",
        }  # fmt: skip
        stats = dict(entry["stats"])
        stats.pop("ci95_median_for", None)  # derived: what ci95_median_ns is for
        for key, value in list(stats.items()):
            if key.startswith("ci95_") and value is not None:
                stats[key] = tuple(value)
        return cls(
            samples_ns=np.asarray(entry["samples_ns"], dtype=np.int64),
            stats=Stats(**stats),
            model=entry.get("model", {}),
            config=entry.get("config", {}),
            environment={**environment, **entry.get("environment", {})},
            scenario=entry.get("scenario", "single-stream"),
            session=entry.get("session", {}),
            warmup=entry.get("warmup", {}),
            loop=entry.get("loop", {}),
            stopping=entry.get("stopping"),
            warnings=tuple(Diagnostic(**w) for w in entry.get("warnings", [])),
            interrupted=bool(entry.get("interrupted", False)),
            notices=tuple(entry.get("notices", [])),
            processes=entry.get("processes"),
            memory=entry.get("memory"),
            compute=entry.get("compute"),
            profile=entry.get("profile"),
            monitor=entry.get("monitor"),
            instructions=entry.get("instructions"),
            generation=entry.get("generation"),
            scenario_stats={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = 2) -> str:
        """The JSON document (schema ``inferspeed/1``) holding this result; written to
        ``path`` as well when given."""
        return write_json([self], path, indent=indent)

    def __repr__(self) -> str:
        s = self.stats
        name = self.model.get("name", "?")
        return (
            f"<Result {name} {self.scenario} n={s.count} median={s.median_ns / 1e3:.3f}us "
            f"p99={s.p99_ns / 1e3:.3f}us{' partial' if self.interrupted else ''}>"
        )


def results_document(results: Sequence[Result], interrupted: bool | None = None) -> dict[str, object]:
    """The JSON document of ``results``; ``interrupted`` (default: any result is) marks a run
    stopped by Ctrl-C, also one stopped before its first result."""
    from ..version import __version__

    env = results[0].environment if results else {}
    return {
        "schema": SCHEMA,
        "inferspeed_version": __version__,
        "interrupted": any(r.interrupted for r in results) if interrupted is None else interrupted,
        "environment": dict(env),
        "results": [_with_own_environment(r, env) for r in results],
    }


def _with_own_environment(result: Result, document: Mapping[str, Any]) -> dict[str, Any]:
    """A result's entry; its ``environment`` holds what differs from the document's (another
    ONNX Runtime library, measured in the same run), absent when nothing does."""
    entry = result.to_dict()
    own = {k: v for k, v in result.environment.items() if document.get(k) != v}
    if own:
        entry["environment"] = own
    return entry


def compute_at(compute: Mapping[str, Any] | None, median_ns: float) -> dict[str, Any] | None:
    """``compute`` with its GFLOP/s at ``median_ns``."""
    if compute is None:
        return None
    macs = compute.get("macs") or 0
    return {**compute, "gflop_per_s": 2.0 * macs / median_ns if median_ns > 0 else None}


def read_json_file(path: str | os.PathLike[str], what: str = "") -> object:
    """The parsed JSON of ``path``; InputError (one line) when it cannot be read or is not JSON.
    ``what`` is added to the not-JSON message (e.g. what the file should have been)."""
    from ..errors import InputError

    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{name} is not JSON{what}: {exc}") from None


def results_from_document(doc: object, name: str) -> list[Result]:
    """The results of a parsed results document (``name`` for messages); InputError for a
    document that is not inferspeed's, or from a newer schema than this version reads."""
    from ..errors import InputError

    schema = doc.get("schema") if isinstance(doc, dict) else None
    if not isinstance(schema, str) or not schema.startswith("inferspeed/"):
        raise InputError(f"{name} is not an inferspeed result (no 'schema': 'inferspeed/N')")
    if schema != SCHEMA:
        raise InputError(f"{name} uses schema {schema}; this inferspeed reads {SCHEMA}: upgrade inferspeed")
    assert isinstance(doc, dict)
    try:
        return [Result.from_dict(r, doc.get("environment", {})) for r in doc["results"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{name}: malformed result ({exc})") from None


def load_json(path: str | os.PathLike[str]) -> list[Result]:
    """The results of a JSON document written by inferspeed. Raises InputError for a file that
    is missing, not JSON, not inferspeed's, or from a newer schema than this version reads."""
    return results_from_document(read_json_file(path), os.fspath(path))


def write_json(
    results: Sequence[Result],
    path: str | os.PathLike[str] | None = None,
    *,
    indent: int | None = 2,
    interrupted: bool | None = None,
) -> str:
    """The results as a JSON document (schema inferspeed/1), written to ``path`` when given
    (through a temporary file, replaced at once) or to standard output when ``path`` is "-"."""
    text = json.dumps(results_document(results, interrupted), indent=indent, allow_nan=False)
    if path is not None and os.fspath(path) == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    elif path is not None:
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
        os.replace(tmp, path)
    return text


def first_dim(shape: Sequence[int] | None) -> int:
    """The first dimension of an input shape (1 for a scalar or no shape)."""
    return int(shape[0]) if shape else 1


def batch_from(shapes: Iterable[Sequence[int] | None]) -> int:
    """The batch of inputs bound at ``shapes`` (in the model's order): the first dimension of
    the first input of rank 2 or more (docs/inputs.md's batch role); 1 when every input has
    rank 0 or 1 (a rank-1 input's length is a length, not a batch)."""
    return next((first_dim(shape) for shape in shapes if shape is not None and len(shape) >= 2), 1)


def batch_of(result: Mapping[str, Any]) -> int:
    """The batch of a result's JSON form (:func:`batch_from` its inputs' bound shapes; a
    sequence's or map's bound shape counts its elements, no batch)."""
    return batch_from(
        i.get("bound_shape")
        for i in result.get("model", {}).get("inputs", [])
        if not str(i.get("type") or "").startswith(_CONTAINERS)
    )


#: Types of inputs whose bound shape is no tensor's (docs/inputs.md).
_CONTAINERS = ("sequence<", "map<", "optional<sequence<", "optional<map<")
