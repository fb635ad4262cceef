"""Benchmark configuration: one frozen dataclass, validated on construction.

This is the one place defaults live. The CLI and the Python API both build a :class:`Config`;
everything downstream reads it and never supplies a default of its own.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from .errors import ConfigError
from .metrics import DEFAULT_METRIC, metric_named
from .metrics import METRICS as METRIC_TABLE

__all__ = [
    "DEFAULT_GEN_TOKENS",
    "DEFAULT_MAX_TIME",
    "DEFAULT_PROMPT_TOKENS",
    "DEFAULT_WARMUP_TIME",
    "GENERATION_STATISTICS",
    "GRAPH_OPTIMIZATION_LEVELS",
    "MAX_SAMPLES",
    "SLO_FIGURES",
    "STATISTICS",
    "Config",
    "ProviderSpec",
    "length_spread",
    "slo_key",
]

#: Seconds a timed loop runs when neither ``iterations`` nor ``max_time`` is given.
DEFAULT_MAX_TIME = 2.0
#: When neither warm-up limit is given, the warm-up runs until latency is steady: at least
#: DEFAULT_WARMUP_TIME seconds, then until the medians of the last WARMUP_STEADY_CHUNKS chunks
#: of WARMUP_CHUNK_TIME seconds lie within WARMUP_STEADY_TOLERANCE of each other, at most
#: WARMUP_MAX_TIME seconds.
DEFAULT_WARMUP_TIME = 0.2
WARMUP_MAX_TIME = 2.0
WARMUP_CHUNK_TIME = 0.1
WARMUP_STEADY_CHUNKS = 3
WARMUP_STEADY_TOLERANCE = 0.05
#: A generation's prompt and output lengths when not given (llama-bench's pp/tg and
#: onnxruntime-genai's benchmark use such lengths).
DEFAULT_PROMPT_TOKENS = 128
DEFAULT_GEN_TOKENS = 128
#: The most samples one timed loop collects (the core's kMaxSamples: 512 MiB of int64).
MAX_SAMPLES = 1 << 26
#: Seconds between the loop's checks for Ctrl-C (outside the timed calls).
CHUNK_TIME = 0.02
#: The timed phase of a closed loop runs in slices of this many seconds, with a reading of the
#: machine-speed monitor between them (measure/monitor.py); each reading is the median of
#: MONITOR_PROBES runs of the probe (~40 µs each), under 0.1% of a slice.
MONITOR_SLICE_TIME = 0.25
MONITOR_PROBES = 5
#: Refuse to generate inputs that need more memory than this unless told otherwise.
DEFAULT_MAX_INPUT_BYTES = 4 << 30
#: Seconds an adaptive run (``target_ci``) may take when neither loop limit is given.
DEFAULT_ADAPTIVE_MAX_TIME = 30.0
#: Cold-cache flush buffer when the last-level cache size cannot be read: twice a large
#: server L3 of 64 MiB.
FALLBACK_FLUSH_BYTES = 128 << 20
CACHE_MODES = ("warm", "cold")
SCENARIOS = ("single-stream", "server", "offline")
ARRIVALS = ("poisson", "constant")
#: Rounds of an interleaved measurement unless told (short rounds pair best).
DEFAULT_ROUNDS = 30
#: Ratios within +-2% of 1 are "no significant difference" in a comparison: below what separate
#: runs of one model usually differ by on a quiet machine.
DEFAULT_THRESHOLD = 0.02
#: The statistics a comparison or a gate may decide on (per interleaved round when paired).
STATISTICS = ("median", "p90", "p99", "mean")
#: What a generation's ``slo`` limits, per request: time to first token (from the request's
#: scheduled arrival) and time per output token (its decode's time over its tokens after the first).
SLO_FIGURES = ("ttft", "tpot")
#: What a comparison or a gate of two decoders' generations may decide on besides: "tpot", the
#: time per output token (the decode steps' median, which "median" is for them too); "ttft",
#: the time to first token; "output_tokens_per_s", output tokens per second (higher is better).
GENERATION_STATISTICS = ("tpot", "ttft", "output_tokens_per_s")
#: Seconds a server or offline run lasts when no duration is given.
DEFAULT_SCENARIO_DURATION = 5.0
#: What a measurement reports (metrics.METRICS): "latency" (wall-clock, the default) or
#: "instructions" (each call's instructions counted under Valgrind's Callgrind,
#: docs/instructions.md).
METRICS = tuple(METRIC_TABLE)

#: ``graph_optimization`` names -> ONNX Runtime's GraphOptimizationLevel values.
GRAPH_OPTIMIZATION_LEVELS: Mapping[str, int] = MappingProxyType(
    {"disable": 0, "basic": 1, "extended": 2, "all": 99}
)
CALL_MODES = ("binding", "run")
EXECUTION_MODES = ("sequential", "parallel")

Mode = Literal["binding", "run"]


@dataclass(frozen=True)
class ProviderSpec:
    """An execution provider to use, with its provider options."""

    name: str
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("provider name must be a non-empty string")
        name = self.name
        if not name.endswith("ExecutionProvider"):
            name += "ExecutionProvider"  # "CUDA" -> "CUDAExecutionProvider", as ORT names them
        object.__setattr__(self, "name", name)
        opts = {str(k): str(v) for k, v in dict(self.options).items()}
        object.__setattr__(self, "options", MappingProxyType(opts))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}

    def __reduce__(self) -> tuple[Any, ...]:  # mappingproxy does not pickle
        return (ProviderSpec, (self.name, dict(self.options)))


def _positive_int(name: str, value: object, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _non_negative_seconds(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value!r}")


def _frozen_mapping(name: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if isinstance(value, Mapping):
        items: Iterable[Any] = value.items()
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        items = value
    else:
        raise ConfigError(f"{name} must be a mapping, got {value!r}")
    out: dict[str, Any] = {}
    for item in items:
        try:
            key, val = item
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must map names to values, got {item!r}") from None
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{name}: names must be non-empty strings, got {key!r}")
        out[key] = val
    return MappingProxyType(out)


def _provider_specs(providers: Iterable[Any] | str | ProviderSpec) -> tuple[ProviderSpec, ...]:
    """``providers`` as ProviderSpecs: one or several names, specs or (name, options) pairs."""
    if isinstance(providers, (str, ProviderSpec)):
        providers = (providers,)
    specs: list[ProviderSpec] = []
    for p in providers:
        if isinstance(p, ProviderSpec):
            specs.append(p)
        elif isinstance(p, str):
            specs.append(ProviderSpec(p))
        elif isinstance(p, tuple) and len(p) == 2:
            specs.append(ProviderSpec(p[0], p[1]))
        else:
            raise ConfigError(f"providers: expected a name or (name, options), got {p!r}")
    return tuple(specs)


def _shapes(value: object) -> Mapping[str, tuple[int, ...]]:
    """``shapes`` checked: each a sequence of positive integers, made a tuple."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape in _frozen_mapping("shapes", value).items():
        if isinstance(shape, int) or not isinstance(shape, Iterable):
            raise ConfigError(f"shape of {name!r} must be a sequence of ints, got {shape!r}")
        dims = tuple(shape)
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise ConfigError(
                    f"shape of {name!r}: every dimension must be a positive integer, got {list(dims)}"
                )
        shapes[name] = dims
    return MappingProxyType(shapes)


def _ranges(value: object) -> Mapping[str, tuple[float, float]]:
    """``ranges`` checked: each (low, high), finite, low < high."""
    ranges: dict[str, tuple[float, float]] = {}
    for name, bounds in _frozen_mapping("ranges", value).items():
        try:
            lo, hi = bounds
            lo_f, hi_f = float(lo), float(hi)
        except (TypeError, ValueError):
            raise ConfigError(f"range of {name!r} must be (low, high), got {bounds!r}") from None
        if not (math.isfinite(lo_f) and math.isfinite(hi_f)) or not lo_f < hi_f:
            raise ConfigError(f"range of {name!r} must have low < high, got {bounds!r}")
        ranges[name] = (lo, hi)
    return MappingProxyType(ranges)


@dataclass(frozen=True)
class Config:
    """Everything that defines one measurement: a frozen dataclass, validated on construction.

    A bad value, or a field given where its scenario or metric does not take it, raises
    :class:`~inferspeed.errors.ConfigError` naming the field. Every field is also a keyword
    option of :class:`~inferspeed.Session`, :func:`~inferspeed.benchmark` and
    :meth:`from_options`; the command-line flag of each is in docs/cli.md. Times are seconds,
    sizes bytes. The limits in force after defaults are :attr:`warmup_limits`,
    :attr:`loop_limits` and :attr:`scenario_duration`; ``to_dict()`` records those.

    Session (ONNX Runtime)
    ----------------------
    threads : int or None, default None
        Intra-op threads, a positive integer. None: ONNX Runtime's default, one per physical
        core (``--threads``).
    inter_op_threads : int or None, default None
        Inter-op threads, a positive integer; ONNX Runtime uses them with
        ``execution_mode="parallel"``. None: ONNX Runtime's default.
    graph_optimization : str, default "all"
        ONNX Runtime's graph optimization level: "disable", "basic", "extended" or "all"
        (GraphOptimizationLevel 0, 1, 2, 99; ``--opt-level``).
    execution_mode : str, default "sequential"
        "sequential" (one node at a time) or "parallel" (independent nodes on the inter-op
        threads).
    providers : tuple of ProviderSpec, default ()
        Execution providers in order of preference; the CPU provider is always the last
        resort. Given as names ("CUDA" or "CUDAExecutionProvider"), :class:`ProviderSpec`
        objects or (name, options) pairs, one or several; stored as ProviderSpecs. (): the CPU
        provider only. A provider the loaded runtime lacks, or options for the CPU provider,
        is a ConfigError when the session is created.
    session_config : mapping of str to str, default {}
        ONNX Runtime session config entries, e.g. ``{"session.intra_op.allow_spinning": "0"}``;
        values are made strings. An ``*.allow_spinning`` entry and ``spin`` cannot both be
        given.
    ort_lib : str, os.PathLike or None, default None
        Path of the libonnxruntime to load. None: ``$INFERSPEED_ORT_LIB``, then the
        onnxruntime wheel's.
    arena : bool, default True
        False: DisableCpuMemArena, ONNX Runtime's buffers come from malloc on every run
        (``--no-arena``).
    mem_pattern : bool, default True
        False: DisableMemPattern, no allocation planned from the first run's sizes
        (``--no-mem-pattern``).

    Inputs
    ------
    shapes : mapping of str to tuple of int, default {}
        ``{input: shape}``, every dimension a positive integer.
    dims : mapping of str to int, default {}
        ``{symbol: size}`` for a dynamic dim by its name, or ``{"input:axis": size}`` for one
        without a usable name; sizes are positive integers. A dim no field sets is chosen
        from the model's metadata and the input's role (docs/inputs.md), with its reason.
    batch : int or None, default None
        The batch dim of every input that has one, a positive integer (throughput is then also
        per item). None: a dynamic batch dim is 1 (a single stream).
    values : mapping of str to object, default {}
        ``{input: constant}``: the input filled with this value (a number, a bool, a string,
        or an array broadcast to the input's shape).
    ranges : mapping of str to (float, float), default {}
        ``{input: (low, high)}``: values drawn uniformly from [low, high); both finite, low <
        high.
    inputs_file : str, os.PathLike or None, default None
        An .npz file of input arrays by input name. None: inputs are generated.
    cast : bool, default False
        Convert ``inputs_file`` arrays of another dtype to the input's type (with a notice)
        rather than refuse them.
    seed : int, default 0
        Seed (a non-negative integer) of the generated inputs, of the server scenario's Poisson
        arrivals, and of the rounds' random order when ``run`` (several models) or ``gate``
        interleave.
    max_input_bytes : int, default 4 GiB (DEFAULT_MAX_INPUT_BYTES)
        Refuse inputs larger than this many bytes in total, all input sets counted; a positive
        integer.
    input_sets : int, default 1
        Distinct input sets (a positive integer), each bound ahead; call *i* uses set *i* mod
        ``input_sets``, so consecutive calls do not reuse one hot input buffer. Set 0 is the
        set that ``input_sets=1`` gives.

    Loop
    ----
    mode : str, default "binding"
        "binding": RunWithBinding on inputs and outputs bound once (on a device provider the
        inputs are copied to the device at bind time, not in the timed call); "run":
        OrtApi::Run with outputs allocated on every call, every copy in the timed call.
        docs/measurement.md has both.
    warmup_iterations : int or None, default None
        Untimed calls before timing, a non-negative integer (0: no warm-up). With
        ``warmup_time`` too, the warm-up stops at whichever limit comes first. With neither,
        the warm-up runs until latency is steady: chunks of 0.1 s, at least
        DEFAULT_WARMUP_TIME (0.2 s), until the last three chunks' medians lie within 5% of
        each other, at most 2 s. The instruction-count metric: 2 unless given.
    warmup_time : float or None, default None
        Seconds of untimed calls before timing, non-negative (see ``warmup_iterations``).
    iterations : int or None, default None
        Timed calls at most, a positive integer. Above MAX_SAMPLES (2**26, the samples one
        loop holds) only when ``max_time`` is given too. The instruction-count metric: the
        counted calls, 10 unless given.
    max_time : float or None, default None
        Seconds of the timed loop at most, positive; the loop stops at whichever of
        ``iterations`` and ``max_time`` comes first. With neither: DEFAULT_MAX_TIME (2 s), or
        DEFAULT_ADAPTIVE_MAX_TIME (30 s) with ``target_ci``. A server or offline run lasts
        ``max_time`` when ``duration`` is not given.
    cache : str, default "warm"
        "warm": calls back to back, the model's data left in the CPU caches; "cold": before
        every call of the closed loop (warm-up included) the core evicts the caches, outside
        the timed region (docs/measurement.md).
    flush_bytes : int or None, default None
        Bytes of the cold-cache flush buffer (``cache="cold"``), a positive integer. None:
        twice the last-level cache, else FALLBACK_FLUSH_BYTES (128 MiB) when its size cannot
        be read (:meth:`resolved_flush_bytes`).
    target_ci : float or None, default None
        Adaptive stopping, single-stream only: stop once the run's own 95% uncertainty of its
        median (its samples and its variation in time: what more samples shrink) is within
        +-``target_ci`` of the median, a fraction in (0, 1) (0.01 for 1%), but not before the
        run has spanned the machine's switching time; or at the loop's limits. The printed
        interval for another run adds what no run length removes. None: the loop runs to its
        limits.
    target_percentile : float or None, default None
        With ``target_ci``: also narrow the interval of this percentile, in (0, 100) (e.g.
        99). Needs ``target_ci``.
    drop_outliers : bool, default False
        Leave MAD outliers (modified z-score above 3.5) out of the statistics; they are
        counted either way and the samples keep them.
    pin : int or None, default None
        Pin the thread that runs the timed loop to this CPU (a non-negative CPU number the
        process may use; Linux). ONNX Runtime's pool threads keep their affinity. None: not
        pinned.
    spin : bool or None, default None
        True or False sets ONNX Runtime's ``session.intra_op.allow_spinning`` and
        ``session.inter_op.allow_spinning`` (:attr:`ort_session_config`): whether its pool
        threads spin while waiting. None: ONNX Runtime's choice.
    processes : int, default 1
        Repeat the measurement in this many fresh processes, one after another, and pool the
        samples (a positive integer); above 1 only through :func:`~inferspeed.benchmark`,
        not ``Session.measure()``.

    Load scenario
    -------------
    scenario : str, default "single-stream"
        "single-stream": one call after another (the closed loop); "server": requests at
        scheduled arrival times (``qps``), latency counted from each request's arrival;
        "offline": ``concurrency`` workers call the model back to back (docs/scenarios.md).
    qps : float or None, default None
        The server scenario's offered arrival rate, requests per second in (0, 1e9). Needed by
        the server scenario and refused by the others.
    arrival : str, default "poisson"
        The server scenario's arrival process: "poisson" (exponential gaps drawn from
        ``seed``) or "constant" (even spacing).
    duration : float or None, default None
        Seconds a server or offline run lasts, positive. None: ``max_time``, else
        DEFAULT_SCENARIO_DURATION (5 s) (:attr:`scenario_duration`).
    concurrency : int, default 1
        Server and offline: worker threads sharing the session (a positive integer), each
        with its own binding; worker *k* uses input set *k* mod ``input_sets``.
    deadline : float or None, default None
        Seconds, positive, any scenario: calls slower than this are counted
        (``deadline_misses``, ``deadline_miss_rate``, ``longest_miss_run``). None: none.
    scheduler_spin : float, default 0.01
        Server: seconds before each arrival an idle worker stops sleeping and spins (a
        sleeping thread may wake late), non-negative; 0 never spins.

    Metric
    ------
    metric : str, default "latency"
        What is measured, a row of :data:`inferspeed.metrics.METRICS`: "latency" (wall-clock
        time per call) or "instructions" (each call's instructions counted under Valgrind's
        Callgrind, docs/instructions.md; measured through :func:`~inferspeed.benchmark`, not
        ``Session.measure()``). A metric's row may refuse other fields (``Metric.only``):
        "instructions" counts ``iterations`` calls after ``warmup_iterations`` (default 10
        after 2) in one single-stream loop on one intra-op thread without spinning, so it takes
        only ``scenario="single-stream"``, ``processes=1``, ``cache="warm"``, ``threads`` None
        or 1, ``spin`` None or False, and no ``target_ci``, ``max_time``, ``warmup_time`` or
        ``pin``. "generation": a decoder's generation (time to first token, time per output
        token; docs/generation.md), chosen by itself for a model recognised as a decoder
        unless ``single_call``.

    Generation
    ----------
    prompt_tokens : int or None, default None
        Tokens of the prompt of each generation, a positive integer. None: DEFAULT_PROMPT_TOKENS
        (128), fewer when the model's context is shorter (said in a note).
    gen_tokens : int or None, default None
        Tokens each generation outputs, at least 2 (the first from the prompt's call, then one
        call per token). None: DEFAULT_GEN_TOKENS (128), fewer when the model's context is
        shorter.
    single_call : bool, default False
        Time one call of the model even when it is a decoder: one decode step, a token after a
        past of ``prompt_tokens`` positions, its inputs sized to agree (``dims`` and ``values``
        given win). Takes no ``gen_tokens``.
    slo : Mapping[str, float], default {}
        A decoder's server scenario: limits in seconds on each request's time to first token
        (``"ttft"``) and time per output token (``"tpot"``); a key with a percentile
        (``"ttft-p99"``) also judges that percentile of the run. The result reports goodput (the
        rate of requests within every limit) and which limit each miss broke
        (docs/scenarios.md).
    request_lengths : str, os.PathLike or None, default None
        A decoder's server and offline scenarios: each request's own prompt and output tokens.
        ``"spread=R"`` (0 <= R < 1): drawn uniformly (integers, from ``seed``) from
        [L(1 - R), L(1 + R)] around ``prompt_tokens`` and ``gen_tokens`` (vLLM's
        ``--random-range-ratio``; the prompt at least 1 token, the output at least 2); else the
        path of a JSONL file whose lines are ``{"prompt_tokens": int, "output_tokens": int}``,
        used in order and cycled (it then takes no ``prompt_tokens`` or ``gen_tokens``). None:
        every request of ``prompt_tokens`` and ``gen_tokens`` (docs/scenarios.md).
    """

    threads: int | None = None
    inter_op_threads: int | None = None
    graph_optimization: str = "all"
    execution_mode: str = "sequential"
    providers: tuple[ProviderSpec, ...] = ()
    session_config: Mapping[str, str] = field(default_factory=dict)
    ort_lib: str | None = None
    arena: bool = True
    mem_pattern: bool = True

    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    dims: Mapping[str, int] = field(default_factory=dict)
    batch: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    inputs_file: str | None = None
    cast: bool = False
    seed: int = 0
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    input_sets: int = 1

    mode: str = "binding"
    warmup_iterations: int | None = None
    warmup_time: float | None = None
    iterations: int | None = None
    max_time: float | None = None
    cache: str = "warm"
    flush_bytes: int | None = None
    target_ci: float | None = None
    target_percentile: float | None = None
    drop_outliers: bool = False
    pin: int | None = None
    spin: bool | None = None
    processes: int = 1
    scenario: str = "single-stream"
    qps: float | None = None
    arrival: str = "poisson"
    duration: float | None = None
    concurrency: int = 1
    deadline: float | None = None
    scheduler_spin: float = 0.01
    metric: str = DEFAULT_METRIC
    prompt_tokens: int | None = None
    gen_tokens: int | None = None
    single_call: bool = False
    slo: Mapping[str, float] = field(default_factory=dict)
    request_lengths: str | None = None

    def __post_init__(self) -> None:
        # In the order of the fields' groups: of several bad fields, the earliest is reported.
        self._check_session()
        self._check_inputs()
        self._check_loop()
        self._check_scenario()
        self._check_limits()
        self._check_metric()
        self._check_generation()
        self._check_slo()
        self._check_request_lengths()

    def _check_session(self) -> None:
        """ONNX Runtime's session fields; providers and session_config normalised."""
        set_ = object.__setattr__
        _positive_int("threads", self.threads)
        _positive_int("inter_op_threads", self.inter_op_threads)
        if self.graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise ConfigError(
                f"graph_optimization must be one of {', '.join(GRAPH_OPTIMIZATION_LEVELS)}, "
                f"got {self.graph_optimization!r}"
            )
        if self.execution_mode not in EXECUTION_MODES:
            raise ConfigError(
                f"execution_mode must be one of {', '.join(EXECUTION_MODES)}, got {self.execution_mode!r}"
            )
        set_(self, "providers", _provider_specs(self.providers))
        entries = _frozen_mapping("session_config", self.session_config)
        set_(self, "session_config", MappingProxyType({k: str(v) for k, v in entries.items()}))
        if self.ort_lib is not None:
            set_(self, "ort_lib", os.fspath(self.ort_lib))

    def _check_inputs(self) -> None:
        """The input fields; shapes, dims, values and ranges made read-only mappings."""
        set_ = object.__setattr__
        set_(self, "shapes", _shapes(self.shapes))
        dim_map = _frozen_mapping("dims", self.dims)
        for sym, size in dim_map.items():
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(f"dim {sym!r} must be a positive integer, got {size!r}")
        set_(self, "dims", dim_map)
        _positive_int("batch", self.batch)
        if not isinstance(self.cast, bool):
            raise ConfigError(f"cast must be True or False, got {self.cast!r}")
        set_(self, "values", _frozen_mapping("values", self.values))
        set_(self, "ranges", _ranges(self.ranges))
        if self.inputs_file is not None:
            set_(self, "inputs_file", os.fspath(self.inputs_file))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        _positive_int("max_input_bytes", self.max_input_bytes, allow_none=False)
        _positive_int("input_sets", self.input_sets, allow_none=False)

    def _check_loop(self) -> None:
        """How the loop runs: cache, adaptive stopping, outliers, pinning, spinning, processes
        (and the session's two switches, checked with the other booleans)."""
        if self.cache not in CACHE_MODES:
            raise ConfigError(f"cache must be one of {', '.join(CACHE_MODES)}, got {self.cache!r}")
        _positive_int("flush_bytes", self.flush_bytes)
        if self.target_ci is not None and (
            isinstance(self.target_ci, bool)
            or not isinstance(self.target_ci, (int, float))
            or not 0 < self.target_ci < 1
        ):
            raise ConfigError(
                f"target_ci must be a fraction in (0, 1), e.g. 0.01 for 1%, got {self.target_ci!r}"
            )
        if self.target_percentile is not None:
            if self.target_ci is None:
                raise ConfigError("target_percentile needs target_ci")
            if (
                isinstance(self.target_percentile, bool)
                or not isinstance(self.target_percentile, (int, float))
                or not 0 < self.target_percentile < 100
            ):
                raise ConfigError(f"target_percentile must be in (0, 100), got {self.target_percentile!r}")
        for name in ("drop_outliers", "arena", "mem_pattern"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.pin is not None and (
            isinstance(self.pin, bool) or not isinstance(self.pin, int) or self.pin < 0
        ):
            raise ConfigError(f"pin must be a CPU number, got {self.pin!r}")
        if self.spin is not None and not isinstance(self.spin, bool):
            raise ConfigError(f"spin must be True, False or None, got {self.spin!r}")
        if self.spin is not None and any(k.endswith(".allow_spinning") for k in self.session_config):
            raise ConfigError("give spinning either as spin or as a session_config entry, not both")
        _positive_int("processes", self.processes, allow_none=False)

    def _check_scenario(self) -> None:
        """The load scenario's fields, and which fields go with which scenario."""
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        if self.arrival not in ARRIVALS:
            raise ConfigError(f"arrival must be one of {', '.join(ARRIVALS)}, got {self.arrival!r}")
        if self.qps is not None and (
            isinstance(self.qps, bool) or not isinstance(self.qps, (int, float)) or not 0 < self.qps < 1e9
        ):
            raise ConfigError(f"qps must be a positive rate, got {self.qps!r}")
        if self.scenario == "server" and self.qps is None:
            raise ConfigError("the server scenario needs an arrival rate (qps / --qps)")
        if self.scenario != "server" and self.qps is not None:
            raise ConfigError("qps applies to the server scenario only (--scenario server)")
        _non_negative_seconds("duration", self.duration)
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"duration must be positive, got {self.duration!r}")
        _positive_int("concurrency", self.concurrency, allow_none=False)
        _non_negative_seconds("deadline", self.deadline)
        if self.deadline is not None and self.deadline <= 0:
            raise ConfigError(f"deadline must be positive, got {self.deadline!r}")
        _non_negative_seconds("scheduler_spin", self.scheduler_spin)
        if self.scenario != "single-stream" and self.target_ci is not None:
            raise ConfigError("target_ci applies to the single-stream scenario only")

    def _check_limits(self) -> None:
        """The call mode and the warm-up's and timed loop's limits."""
        if self.mode not in CALL_MODES:
            raise ConfigError(f"mode must be one of {', '.join(CALL_MODES)}, got {self.mode!r}")
        if self.warmup_iterations is not None and (
            isinstance(self.warmup_iterations, bool)
            or not isinstance(self.warmup_iterations, int)
            or self.warmup_iterations < 0
        ):
            raise ConfigError(
                f"warmup_iterations must be a non-negative integer, got {self.warmup_iterations!r}"
            )
        _non_negative_seconds("warmup_time", self.warmup_time)
        _positive_int("iterations", self.iterations)
        if self.iterations is not None and self.iterations > MAX_SAMPLES and self.max_time is None:
            raise ConfigError(
                f"iterations must be at most {MAX_SAMPLES} (the samples one loop can hold), got "
                f"{self.iterations}; give max_time too to stop by time instead"
            )
        _non_negative_seconds("max_time", self.max_time)
        if self.max_time is not None and self.max_time <= 0:
            raise ConfigError(f"max_time must be positive, got {self.max_time!r}")

    def _check_metric(self) -> None:
        """The metric, and the settings its row of the metrics table does not accept."""
        if not isinstance(self.metric, str):
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        metric = metric_named(self.metric)
        bad = metric.refused(self)
        if bad:
            raise ConfigError(
                f"metric {metric.name!r} {metric.only_because}: it does not take {', '.join(bad)}"
            )

    def _check_generation(self) -> None:
        """The generation fields: positive lengths, at least two output tokens (one decode step)."""
        _positive_int("prompt_tokens", self.prompt_tokens)
        _positive_int("gen_tokens", self.gen_tokens)
        if self.gen_tokens is not None and self.gen_tokens < 2:
            raise ConfigError(
                f"gen_tokens must be at least 2 (the first token comes from the prompt's call, the "
                f"time per output token from the calls after it), got {self.gen_tokens}"
            )
        if not isinstance(self.single_call, bool):
            raise ConfigError(f"single_call must be True or False, got {self.single_call!r}")
        if self.single_call and self.gen_tokens is not None:
            raise ConfigError(
                "gen_tokens is a generation's; single_call times one decode step (prompt_tokens sets "
                "its past)"
            )
        if self.single_call and self.metric == "generation":
            raise ConfigError("single_call times one call of the model: it does not take metric 'generation'")

    def _check_slo(self) -> None:
        """The generation requests' limits: known figures, positive seconds, a server run."""
        limits = _frozen_mapping("slo", self.slo)
        for key, seconds in limits.items():
            slo_key(key)
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, (int, float))
                or not math.isfinite(seconds)
                or seconds <= 0
            ):
                raise ConfigError(f"slo {key!r} must be a positive number of seconds, got {seconds!r}")
        if limits and self.scenario != "server":
            raise ConfigError("slo applies to a decoder's server scenario only (--scenario server)")
        if limits and self.single_call:
            raise ConfigError("slo limits generation requests; single_call times one call of the model")
        object.__setattr__(self, "slo", MappingProxyType({k: float(v) for k, v in limits.items()}))

    def _check_request_lengths(self) -> None:
        """Each request's lengths: a spread in [0, 1) or a file's path, a decoder's load scenario."""
        spec = self.request_lengths
        if spec is None:
            return
        if isinstance(spec, os.PathLike):
            spec = os.fspath(spec)
            object.__setattr__(self, "request_lengths", spec)
        if not isinstance(spec, str) or not spec.strip():
            raise ConfigError(f"request_lengths must be 'spread=R' or a JSONL file's path, got {spec!r}")
        spread = length_spread(spec)
        if self.scenario == "single-stream" or self.single_call:
            raise ConfigError(
                "request_lengths varies a decoder's generation requests under load: it applies to the "
                "server and offline scenarios (--scenario server or offline), not to "
                + ("single_call" if self.single_call else "the single-stream scenario")
            )
        if spread is None and (self.prompt_tokens is not None or self.gen_tokens is not None):
            raise ConfigError(
                f"request_lengths file {spec} gives each request's prompt and output tokens: it takes "
                "no prompt_tokens or gen_tokens"
            )

    @property
    def warmup_limits(self) -> tuple[int | None, float | None]:
        """(iterations, seconds) of the warm-up, defaults applied."""
        fixed = metric_named(self.metric).default_calls
        if fixed is not None:
            return fixed[0] if self.warmup_iterations is None else self.warmup_iterations, None
        if self.warmup_iterations is None and self.warmup_time is None:
            return None, DEFAULT_WARMUP_TIME
        return self.warmup_iterations, self.warmup_time

    @property
    def loop_limits(self) -> tuple[int | None, float | None]:
        """(iterations, seconds) of the timed loop, defaults applied."""
        fixed = metric_named(self.metric).default_calls
        if fixed is not None:
            return self.iterations or fixed[1], None
        if self.iterations is None and self.max_time is None:
            return None, DEFAULT_ADAPTIVE_MAX_TIME if self.target_ci is not None else DEFAULT_MAX_TIME
        return self.iterations, self.max_time

    @property
    def scenario_duration(self) -> float:
        """Seconds a server or offline run lasts (``duration``, else max_time, else the default)."""
        return self.duration or self.max_time or DEFAULT_SCENARIO_DURATION

    @property
    def ort_session_config(self) -> dict[str, str]:
        """The session config entries given to ONNX Runtime (``spin`` included)."""
        entries = dict(self.session_config)
        if self.spin is not None:
            entries["session.intra_op.allow_spinning"] = "1" if self.spin else "0"
            entries["session.inter_op.allow_spinning"] = "1" if self.spin else "0"
        return entries

    def resolved_flush_bytes(self, last_level_cache_bytes: int | None) -> int:
        """Size of the cold-cache flush buffer: ``flush_bytes``, else twice the last-level
        cache, else FALLBACK_FLUSH_BYTES."""
        if self.flush_bytes is not None:
            return self.flush_bytes
        if last_level_cache_bytes:
            return 2 * last_level_cache_bytes
        return FALLBACK_FLUSH_BYTES

    def __reduce__(self) -> tuple[Any, ...]:  # mappingproxy fields do not pickle
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        plain = {k: dict(v) if isinstance(v, Mapping) else v for k, v in fields.items()}
        return (_config_from_fields, (plain,))

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_options(cls, config: Config | None = None, **options: Any) -> Config:
        """``config`` with ``options`` applied; unknown option names raise ConfigError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
        if config is None:
            return cls(**options)
        return dataclasses.replace(config, **options) if options else config

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``config`` object of a result)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "providers":
                value = [p.to_dict() for p in value]
            elif isinstance(value, Mapping):
                value = {k: (list(v) if isinstance(v, tuple) else _jsonable(v)) for k, v in value.items()}
            out[f.name] = value
        # The limits in force, after defaults: what the measurement really used.
        out["warmup_iterations"], out["warmup_time"] = self.warmup_limits
        out["iterations"], out["max_time"] = self.loop_limits
        return out


def slo_key(key: str) -> tuple[str, float | None]:
    """An ``slo`` key as (figure, percentile): ``"ttft"`` -> ("ttft", None), each request
    judged; ``"tpot-p99"`` -> ("tpot", 99.0), the run's 99th percentile judged too. ConfigError
    for a figure not in SLO_FIGURES or a percentile outside (0, 100)."""
    figure, dash, pct = key.strip().lower().partition("-")
    if figure not in SLO_FIGURES:
        raise ConfigError(
            f"slo limits {' and '.join(SLO_FIGURES)} (e.g. ttft=500ms or tpot-p99=50ms), got {key!r}"
        )
    if not dash:
        return figure, None
    try:
        value = float(pct.removeprefix("p"))
    except ValueError:
        value = math.nan
    if not pct.startswith("p") or not 0 < value < 100:
        raise ConfigError(
            f"slo {key!r}: a percentile is written pNN, between p0 and p100 (e.g. {figure}-p99)"
        )
    return figure, value


def length_spread(spec: str) -> float | None:
    """The R of a ``request_lengths`` of ``"spread=R"`` (ConfigError unless 0 <= R < 1); None
    for a file's path."""
    head, eq, value = spec.strip().partition("=")
    if not eq or head.strip().lower() != "spread":
        return None
    try:
        spread = float(value)
    except ValueError:
        spread = math.nan
    if not 0 <= spread < 1:
        raise ConfigError(f"request_lengths spread=R takes R in [0, 1) (e.g. spread=0.5), got {spec!r}")
    return spread


def _config_from_fields(fields: dict[str, Any]) -> Config:
    return Config(**fields)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return repr(value)
